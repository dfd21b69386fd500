"""Vocoder registry: the `dec` of the synthesizer, chosen by the `vocoder` config group.

Every vocoder takes (x [B, inter_channels, T], f0 [B, T] Hz or None, g [B, gin, 1]) and returns
a waveform [B, 1, T * prod(upsample_rates)]. Names are the ones written in `.pth` metadata.
"""

from __future__ import annotations

import importlib

from torch import nn

# metadata name -> (module, class); imported lazily so one vocoder's deps don't load the others
_REGISTRY: dict[str, tuple[str, str]] = {
    "HiFi-GAN": ("rvc.models.vocoders.hifigan", "HiFiGANNSF"),
    "HiFi-GAN-noF0": ("rvc.models.vocoders.hifigan", "HiFiGAN"),
    "MRF HiFi-GAN": ("rvc.models.vocoders.mrf_hifigan", "MRFHiFiGAN"),
    "RefineGAN": ("rvc.models.vocoders.refinegan", "RefineGAN"),
}

VOCODER_NAMES = ("HiFi-GAN", "MRF HiFi-GAN", "RefineGAN")


def vocoder_class(name: str, use_f0: bool = True) -> type[nn.Module]:
    """The class for a vocoder name; no-F0 models only exist with plain HiFi-GAN."""
    if not use_f0:
        if name not in ("HiFi-GAN", "HiFi-GAN-noF0"):
            raise ValueError(f"vocoder '{name}' needs F0; only HiFi-GAN has a no-F0 variant")
        name = "HiFi-GAN-noF0"
    if name not in _REGISTRY:
        raise ValueError(f"unknown vocoder '{name}'; choose one of {', '.join(VOCODER_NAMES)}")
    module, cls = _REGISTRY[name]
    return getattr(importlib.import_module(module), cls)
