"""The vocoder in pieces (`rvc.models.segments`) gives the whole call's audio: real-size 40k
HiFi-GAN NSF and MRF HiFi-GAN with random weights, noise off, the overtones' random starts on."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rvc.models.layouts import standard_config
from rvc.models.segments import segmentable, vocode
from rvc.models.synthesizer import Synthesizer


def _snr_db(ref: torch.Tensor, y: torch.Tensor) -> float:
    return float(10 * torch.log10(ref.pow(2).sum() / (y - ref).pow(2).sum().clamp(min=1e-30)))


@pytest.mark.parametrize("vocoder", ["HiFi-GAN", "MRF HiFi-GAN"])
def test_pieces_give_the_whole_calls_audio(vocoder, monkeypatch):
    # NSF noise off; the overtones' random starts stay (one draw per call either way)
    monkeypatch.setattr(torch, "randn_like", lambda x, *a, **k: torch.zeros_like(x, **k))
    torch.manual_seed(0)
    net = Synthesizer(*standard_config(40000), use_f0=True, vocoder=vocoder).eval()
    net.remove_weight_norm()
    dec = net.dec
    frames = 150
    z = torch.randn(1, 192, frames)
    t = torch.arange(frames) / 100
    f0 = (140 + 30 * torch.sin(2 * np.pi * 0.5 * t))[None] * (t % 0.7 < 0.5)  # with pauses
    g = torch.randn(1, 256, 1)
    with torch.inference_mode():
        torch.manual_seed(1)
        whole = dec(z, f0, g=g)[..., : frames * dec.upp]
        torch.manual_seed(1)
        pieces = vocode(dec, z, f0, g, frames, segment=40, context=24)  # 4 pieces, the last slid
        torch.manual_seed(1)
        blind = vocode(dec, z, f0, g, frames, segment=40, context=0)  # no context
    assert segmentable(dec) and pieces.shape == whole.shape
    assert _snr_db(whole, pieces) > 60, _snr_db(whole, pieces)  # float rounding only
    # measured: HiFi-GAN 130 dB, MRF 107 dB with the context; 33 and 32 dB without it
    assert _snr_db(whole, blind) < 40  # so the test would see a too-short context


def test_refinegan_is_vocoded_whole():
    net = Synthesizer(*standard_config(32000), use_f0=True, vocoder="RefineGAN")
    assert not segmentable(net.dec)
