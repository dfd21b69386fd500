"""Coarse pitch (docs/formats.md §5): F0 Hz → 1..255, numpy and torch."""

from __future__ import annotations

import math

import numpy as np
import torch

from rvc.f0.coarse import f0_to_coarse


def by_hand(f0: float) -> int:
    """The §5 formula written out for one voiced value."""
    mel = 1127 * math.log(1 + f0 / 700)
    mel_min = 1127 * math.log(1 + 50 / 700)
    mel_max = 1127 * math.log(1 + 1100 / 700)
    return round(min(max((mel - mel_min) * 254 / (mel_max - mel_min) + 1, 1), 255))


def test_edges_numpy():
    out = f0_to_coarse(np.array([0.0, 50.0, 1100.0, 2000.0]))
    assert out.dtype == np.int64
    assert out.tolist() == [1, 1, 255, 255]


def test_mid_values_match_the_formula():
    values = [60.0, 100.0, 220.0, 300.0, 440.0, 900.0]
    assert f0_to_coarse(np.array(values)).tolist() == [by_hand(v) for v in values]
    assert f0_to_coarse(np.array([300.0]))[0] == 84  # 1127·ln(1+3/7) = 401.97 mel → 84.46


def test_unvoiced_negative_nan_and_below_range():
    out = f0_to_coarse(np.array([-5.0, np.nan, 0.0, 10.0, 49.0]))
    assert out.tolist() == [1, 1, 1, 1, 1]


def test_torch_matches_numpy_and_keeps_shape():
    f0 = np.random.default_rng(0).uniform(0, 1500, size=(3, 257))
    f0[:, ::7] = 0
    want = f0_to_coarse(f0)
    got = f0_to_coarse(torch.from_numpy(f0).float())
    assert got.dtype == torch.long and got.shape == (3, 257)
    # float32 input may round differently right at a .5 boundary: allow ±1 there only
    assert (got.numpy() - want).__abs__().max() <= 1
    np.testing.assert_array_equal(f0_to_coarse(torch.from_numpy(f0)).numpy(), want)
    assert want.min() >= 1 and want.max() <= 255


def test_monotonic_over_range():
    out = f0_to_coarse(np.linspace(50, 1100, 5000))
    assert (np.diff(out) >= 0).all()
    assert out[0] == 1 and out[-1] == 255 and len(np.unique(out)) == 255
