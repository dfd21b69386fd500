"""Tiny synthesizers (published upsampling, few channels) and seeded inference for io tests."""

from __future__ import annotations

import torch

from rvc.io.detect import SEGMENT_FRAMES
from rvc.io.voice_model import build_synthesizer
from rvc.io.weight_norm_names import to_rvc_names
from rvc.models.layouts import FEATURE_DIMS, layout
from tests.conftest import debug_config


def tiny_config(sr: int = 40000, spk: int = 3, version: str = "v2") -> list:
    """The debug model's channels with the real upsampling and enc_q of (`version`, `sr`), and
    the values a detected config takes for what the tensors do not store (segment, dilations)."""
    lay = layout(version, sr)
    return debug_config(
        spec_channels=lay.spec_channels,
        segment_size=SEGMENT_FRAMES,
        resblock_dilation_sizes=[[1, 3, 5]] * len(debug_config()[10]),
        upsample_rates=list(lay.upsample_rates),
        upsample_kernel_sizes=list(lay.upsample_kernel_sizes),
        spk_embed_dim=spk,
        sr=sr,
    )


def tiny_synth(
    vocoder: str = "HiFi-GAN",
    sr: int = 40000,
    use_f0: bool = True,
    version: str = "v2",
    seed: int = 0,
    layout_version: str = "v2",
) -> torch.nn.Module:
    """A random tiny synthesizer in eval mode: `version`'s features, `layout_version`'s layout."""
    torch.manual_seed(seed)
    config = tiny_config(sr, version=layout_version)
    return build_synthesizer(config, use_f0, vocoder, FEATURE_DIMS[version]).eval()


def infer(net: torch.nn.Module, frames: int = 12, seed: int = 1) -> torch.Tensor:
    """Seeded conversion of fixed random features: same weights -> same waveform [1, 1, N]."""
    g = torch.Generator().manual_seed(123)
    phone = torch.randn(1, frames, net.text_enc_hidden_dim, generator=g)
    pitchf = 100 + 100 * torch.rand(1, frames, generator=g)
    pitch = torch.randint(1, 256, (1, frames), generator=g)
    torch.manual_seed(seed)  # the prior sample and the NSF noise draw from the global RNG
    with torch.no_grad():
        wav, *_ = net.infer(phone, torch.tensor([frames]), pitch, pitchf, sid=0)
    return wav


def foreign_file(net: torch.nn.Module, **keys) -> dict:
    """A file as the RVC WebUI wrote it: fp16, RVC names, no enc_q, no newer metadata."""
    weight = {
        k: v.half() for k, v in to_rvc_names(net.state_dict()).items() if not k.startswith("enc_q.")
    }
    return {"weight": weight, "config": list(net.config), **keys}


def write_rvc_checkpoint(path, net, iteration: int, learning_rate: float = 1e-4, **extra):
    """A `G_*.pth` / `D_*.pth` as RVC WebUI and Applio write them (weight_g/weight_v names)."""
    from rvc.io.weight_norm_names import to_rvc_names

    data = {"model": to_rvc_names(net.state_dict()), "iteration": iteration, "optimizer": {},
            "learning_rate": learning_rate, **extra}  # fmt: skip
    torch.save(data, path)
    return path
