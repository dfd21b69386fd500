"""The shared spectrogram / mel module against librosa and a direct numpy STFT."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import torch

from rvc.audio import mel as melmod
from rvc.audio.mel import MelSpectrogram, mel_basis, spec_to_mel, spectrogram


def numpy_spectrogram(y: np.ndarray, n_fft: int, hop: int, win: int) -> np.ndarray:
    """RVC's recipe written out: reflect pad (n_fft-hop)/2, frames, centred Hann, |rfft|."""
    pad = (n_fft - hop) // 2
    y = np.pad(y.astype(np.float64), (pad, pad), mode="reflect")
    window = np.zeros(n_fft)
    left = (n_fft - win) // 2
    window[left : left + win] = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)  # periodic
    n_frames = 1 + (len(y) - n_fft) // hop
    frames = np.stack([y[i * hop : i * hop + n_fft] * window for i in range(n_frames)], axis=1)
    spec = np.fft.rfft(frames, axis=0)
    return np.sqrt(spec.real**2 + spec.imag**2 + 1e-6)


@pytest.mark.parametrize(
    ("n_fft", "hop", "win"), [(1024, 320, 1024), (2048, 400, 2048), (512, 128, 384)]
)
def test_spectrogram_matches_numpy_reference(n_fft, hop, win):
    rng = np.random.default_rng(n_fft)
    y = (rng.standard_normal(hop * 23) * 0.3).astype(np.float32)
    got = spectrogram(torch.from_numpy(y)[None], n_fft, hop, win)[0].numpy()
    want = numpy_spectrogram(y, n_fft, hop, win)
    assert got.shape == (n_fft // 2 + 1, 23)  # N·hop samples -> N frames
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    ("sr", "n_fft", "n_mels"), [(32000, 1024, 80), (40000, 2048, 125), (48000, 2048, 128)]
)
def test_mel_basis_is_librosa_slaney(sr, n_fft, n_mels):
    basis = mel_basis(sr, n_fft, n_mels)
    want = librosa.filters.mel(
        sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=0.0, fmax=None, norm="slaney", htk=False
    )
    assert basis.shape == (n_mels, n_fft // 2 + 1)
    np.testing.assert_allclose(basis.numpy(), want, rtol=1e-6, atol=1e-9)
    assert mel_basis(sr, n_fft, n_mels) is basis  # cached
    assert mel_basis(sr, n_fft, n_mels, dtype=torch.float64).dtype == torch.float64


def test_log_mel_matches_reference_and_clamps_silence():
    sr, n_fft, hop = 32000, 1024, 320
    t = np.arange(hop * 20) / sr
    y = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    y[: hop * 5] = 0.0  # a silent start
    got = MelSpectrogram(sr, n_fft, hop, n_fft, 80)(torch.from_numpy(y)[None, None])[0].numpy()
    basis = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=80)
    want = np.log(np.maximum(basis @ numpy_spectrogram(y, n_fft, hop, n_fft), 1e-5))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)
    assert got.min() >= np.log(1e-5) - 1e-6
    peak_bin = got[:, -1].argmax()  # the 440 Hz band dominates the voiced frames
    centres = librosa.mel_frequencies(n_mels=82, fmin=0, fmax=sr / 2)[1:-1]
    assert abs(centres[peak_bin] - 440) < 100


def test_module_equals_functions_and_handles_half_input():
    m = MelSpectrogram(40000, 2048, 400, n_mels=125)
    y = torch.randn(2, 1, 4000) * 0.2
    want = spec_to_mel(spectrogram(y, 2048, 400, 2048), 40000, 2048, 125)
    torch.testing.assert_close(m(y), want)
    torch.testing.assert_close(m.spec_to_mel(m.spectrogram(y)), m(y))
    out = m(y.to(torch.bfloat16))
    assert out.dtype == torch.float32 and out.shape == (2, 125, 10)


def test_window_cache_is_per_dtype():
    a = melmod.hann_window(64, "cpu", torch.float32)
    b = melmod.hann_window(64, "cpu", torch.float64)
    assert a is melmod.hann_window(64, "cpu", torch.float32) and b.dtype == torch.float64


def test_gradient_flows_through_log_mel():
    y = (torch.randn(1, 3200) * 0.1).requires_grad_()
    MelSpectrogram(32000, 1024, 320, n_mels=80)(y).mean().backward()
    assert torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0


def test_each_item_spectrogram_ignores_its_batch_mates_and_padding():
    # issue 17 §5a: a short item padded up to a longer one's length gives the frames it gives
    # alone (reflection at its own end, as Applio's per-clip STFT); frames past its end are 0
    hop, n_fft = 400, 2048
    g = torch.Generator().manual_seed(0)
    short, long = torch.randn(1, 30 * hop, generator=g), torch.randn(1, 50 * hop, generator=g)
    batch = torch.zeros(2, 50 * hop)
    batch[0, : 30 * hop], batch[1] = short[0], long[0]
    spec = spectrogram(batch, n_fft, hop, n_fft, torch.tensor([30 * hop, 50 * hop]))
    alone = spectrogram(short, n_fft, hop, n_fft)[0]
    scale = alone.max()
    assert torch.allclose(spec[0, :, :30], alone, rtol=0, atol=1e-5 * scale)
    assert torch.allclose(
        spec[1], spectrogram(long, n_fft, hop, n_fft)[0], rtol=0, atol=1e-5 * scale
    )
    assert torch.all(spec[0, :, 30:] == 0)
    # without lengths the padding leaks into the short item's last frames (what this fixes)
    leaky = spectrogram(batch, n_fft, hop, n_fft)[0, :, :30]
    assert (leaky - alone).abs().max() > 0.05 * scale
