"""FCPE on input beyond full scale: no torchfcpe error line, and the pitch torchfcpe gives."""

from __future__ import annotations

import numpy as np
import torch

from rvc.f0.base import SAMPLE_RATE
from rvc.f0.fcpe import FCPEEstimator


def _cents(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return 1200 * np.abs(np.log2(a / b))


def test_overshooting_clip_is_scaled_silently_and_keeps_its_pitch(make_tone, capfd):
    """A full-scale recording overshoots [-1, 1] after the high-pass; torchfcpe prints
    `[error with torchfcpe.mel_extractor.MelModule]` for it on every clip."""
    audio, truth = make_tone(220.0, seed=5)
    loud = (3.0 * audio).astype(np.float32)  # peak 1.5
    est = FCPEEstimator()
    with torch.inference_mode():  # what RVC computes: torchfcpe on the raw samples
        raw = est.load().infer(
            torch.from_numpy(loud)[None, :, None], sr=SAMPLE_RATE, decoder_mode="local_argmax",
            threshold=0.006, f0_min=50.0, f0_max=None, interp_uv=False,
        ).squeeze().numpy()[: len(truth)]  # fmt: skip
    assert "error with torchfcpe" in capfd.readouterr().out  # the line this test keeps away

    f0 = est.compute(loud)
    assert "error with torchfcpe" not in capfd.readouterr().out
    both = (f0 > 0) & (raw > 0) & (truth > 0)
    assert both.sum() > 0.8 * (truth > 0).sum()
    assert np.median(_cents(f0[both], raw[both])) < 5  # scaling keeps torchfcpe's pitch
    assert np.median(_cents(f0[both], truth[both])) < 20


def test_scaling_is_per_clip_in_a_batch(make_tone):
    """A loud clip batched with a quiet one of the same length leaves the quiet one's F0 alone."""
    quiet, _ = make_tone(150.0, seed=6)
    loud = (4.0 * make_tone(300.0, seed=7)[0]).astype(np.float32)
    est = FCPEEstimator()
    alone = est.compute(quiet)
    batched = est.compute_batch([quiet, loud])
    np.testing.assert_allclose(batched[0], alone, rtol=1e-5, atol=1e-3)
