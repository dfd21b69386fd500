"""The harmonic-plus-noise source: frequency, phase continuity, voicing, harmonics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rvc.models.nsf import SineGen, SourceModuleHnNSF


def test_constant_f0_is_an_exact_sine():
    sr, upp, f0 = 16000, 160, 200.0
    gen = SineGen(sr, sine_amp=0.1, noise_std=0.0)
    sine, uv = gen(torch.full((2, 30), f0), upp)
    assert sine.shape == (2, 30 * upp, 1) and uv.shape == (2, 30 * upp, 1)
    n = np.arange(1, 30 * upp + 1)  # the first sample has already advanced one step
    expected = 0.1 * np.sin(2 * np.pi * f0 * n / sr)
    np.testing.assert_allclose(sine[0, :, 0].numpy(), expected, atol=1e-5)
    assert torch.equal(sine[0], sine[1]) and bool((uv == 1).all())


def test_phase_is_continuous_over_long_varying_f0():
    sr, upp, frames = 48000, 480, 400
    rng = np.random.default_rng(0)
    f0 = rng.uniform(80, 900, frames).astype(np.float32)
    sine, _ = SineGen(sr, noise_std=0.0)(torch.from_numpy(f0)[None], upp)
    phase = np.cumsum(np.repeat(f0.astype(np.float64), upp) / sr)  # float64 reference
    np.testing.assert_allclose(sine[0, :, 0].numpy(), 0.1 * np.sin(2 * np.pi * phase), atol=2e-5)


def test_unvoiced_frames_are_noise_only():
    torch.manual_seed(0)
    f0 = torch.full((1, 40), 220.0)
    f0[:, 20:] = 0.0
    sine, uv = SineGen(16000, sine_amp=0.1, noise_std=0.003)(f0, 100)
    assert bool((uv[0, :2000] == 1).all()) and bool((uv[0, 2000:] == 0).all())
    unvoiced = sine[0, 2000:, 0]
    assert abs(unvoiced.std().item() - 0.1 / 3) < 0.003 and abs(unvoiced.mean().item()) < 0.003
    assert sine[0, :2000, 0].abs().max() < 0.1 + 0.02


def test_harmonics_have_multiples_of_f0():
    sr, upp, f0 = 16000, 100, 250.0
    sine, _ = SineGen(sr, harmonic_num=8, noise_std=0.0)(torch.full((1, 64), f0), upp)
    assert sine.shape == (1, 6400, 9)
    spectrum = np.abs(np.fft.rfft(sine[0].numpy(), axis=0))  # [bins, 9]
    peaks = spectrum.argmax(axis=0) * sr / 6400
    np.testing.assert_allclose(peaks, f0 * np.arange(1, 10), atol=sr / 6400)


def test_noise_repeats_under_manual_seed():
    src = SourceModuleHnNSF(16000, harmonic_num=8)
    f0 = torch.full((2, 10), 150.0)
    f0[:, :3] = 0
    torch.manual_seed(5)
    a = src(f0, 50)
    torch.manual_seed(5)
    b = src(f0, 50)
    assert a.shape == (2, 1, 500) and torch.equal(a, b)
    assert src.l_linear.in_features == 9
    torch.manual_seed(6)
    assert not torch.equal(a, src(f0, 50))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_source_follows_linear_dtype(dtype):
    src = SourceModuleHnNSF(16000).to(dtype)
    out = src(torch.full((1, 4), 100.0), 10)
    assert out.dtype == dtype and out.shape == (1, 1, 40)


def test_overtone_start_phases_per_batch_or_per_item():
    # issue 17 §5d: Applio's NSF HiFi-GAN draws one set of start phases per batch, its MRF
    # HiFi-GAN one per item; with identical inputs only the per-item source differs by row
    f0 = torch.full((2, 16), 200.0)
    shared = SineGen(40000, harmonic_num=8, noise_std=0.0)
    torch.manual_seed(0)
    a, _ = shared(f0, 40)
    assert torch.equal(a[0], a[1])
    per_item = SineGen(40000, harmonic_num=8, noise_std=0.0, per_item_phase=True)
    torch.manual_seed(0)
    b, _ = per_item(f0, 40)
    assert not torch.allclose(b[0, :, 1:], b[1, :, 1:])
    assert torch.allclose(b[0, :, 0], b[1, :, 0])  # the fundamental starts at 0 in both
