"""rvc/models/layouts.py: the (version, rate) table, and every vocoder built on every layout."""

from __future__ import annotations

import math

import pytest
import torch

from rvc.models.layouts import LAYOUTS, layout, layout_value, standard_config
from rvc.models.synthesizer import Synthesizer
from tests.conftest import debug_config

KEYS = sorted(LAYOUTS)


@pytest.mark.parametrize("key", KEYS)
def test_each_layout_is_consistent(key):
    lay = LAYOUTS[key]
    assert math.prod(lay.upsample_rates) == lay.hop_length == lay.sample_rate // 100  # 10 ms
    assert len(lay.upsample_rates) == len(lay.upsample_kernel_sizes)
    assert lay.segment_samples % lay.hop_length == 0
    config = standard_config(lay.sample_rate, key[0])
    assert config[0] == lay.spec_channels and config[12] == list(lay.upsample_rates)


def test_v1_and_v2_differ_only_where_rvc_does():
    for sr in (32000, 48000):
        assert layout("v1", sr).upsample_rates != layout("v2", sr).upsample_rates
        assert len(layout("v1", sr).upsample_rates) == 5
    assert layout("v1", 40000) == layout("v2", 40000)
    assert layout_value("v1", "48000", "segment_frames") == 24  # a string from a config, too


def test_unknown_layouts_are_clear_errors():
    with pytest.raises(ValueError, match=r"no RVC v1 layout at 44100 Hz; choose one of 32000"):
        layout("v1", 44100)
    with pytest.raises(ValueError, match="unknown RVC version 'v3'"):
        layout("v3", 40000)
    with pytest.raises(KeyError, match="no layout value 'rates'"):
        layout_value("v2", 40000, "rates")


def _tiny(key, vocoder: str, use_f0: bool = True) -> Synthesizer:
    lay = LAYOUTS[key]
    cfg = debug_config(spec_channels=lay.spec_channels, upsample_rates=list(lay.upsample_rates),
                       upsample_kernel_sizes=list(lay.upsample_kernel_sizes),
                       sr=lay.sample_rate)  # fmt: skip
    return Synthesizer(*cfg, use_f0=use_f0, vocoder=vocoder, text_enc_hidden_dim=16).eval()


@pytest.mark.parametrize("vocoder", ["HiFi-GAN", "MRF HiFi-GAN", "RefineGAN"])
@pytest.mark.parametrize("key", [("v1", 32000), ("v1", 48000), ("v2", 48000)])
def test_every_vocoder_runs_on_the_layout(one_thread, key, vocoder):
    torch.manual_seed(0)
    net = _tiny(key, vocoder)
    frames = 7
    phone = torch.randn(1, frames, 16)
    pitch = torch.randint(1, 256, (1, frames))
    wav, *_ = net.infer(phone, torch.tensor([frames]), pitch, torch.full((1, frames), 150.0))
    assert wav.shape == (1, 1, frames * LAYOUTS[key].hop_length) and torch.isfinite(wav).all()
    if vocoder != "RefineGAN":  # the NSF noise convs: what rvc.io.detect reads the rate from
        kernels = [c.kernel_size[0] for c in net.dec.noise_convs]
        assert kernels == LAYOUTS[key].noise_conv_kernels()
