"""F0 edits used by conversion: transpose, voiced-only median, autotune."""

from __future__ import annotations

import numpy as np
import pytest

from rvc.f0.edit import autotune, median_voiced, transpose


def test_transpose_by_octaves_and_semitones_keeps_unvoiced_frames():
    f0 = np.array([0.0, 100.0, 220.0, 0.0])
    np.testing.assert_allclose(transpose(f0, 12), [0, 200, 440, 0])
    np.testing.assert_allclose(transpose(f0, -12), [0, 50, 110, 0])
    assert transpose(f0, 7)[1] == pytest.approx(100 * 2 ** (7 / 12))


def test_median_removes_a_spike_without_pulling_run_ends_to_zero():
    f0 = np.array([0, 0, 150, 151, 300, 152, 153, 0, 0], dtype=float)
    out = median_voiced(f0, 3)
    assert out[4] == pytest.approx(152)  # the octave jump is gone
    assert out[2] == pytest.approx(150.5) and out[6] == pytest.approx(152.5)  # ends stay voiced
    assert (out[f0 == 0] == 0).all()
    np.testing.assert_array_equal(median_voiced(f0, 1), f0)


def test_autotune_pulls_towards_the_nearest_semitone():
    f0 = np.array([0.0, 445.0, 227.0])  # A4 + 20 cents, A#3 - 25 cents
    snapped = autotune(f0, 1.0)
    np.testing.assert_allclose(snapped, [0.0, 440.0, 440 * 2 ** (-11 / 12)])
    half = autotune(f0, 0.5)
    np.testing.assert_allclose(half[1], 442.5)
    assert half[0] == 0
