"""F0 edits applied before conversion: transpose, smoothing, autotune (0 Hz = unvoiced)."""

from __future__ import annotations

import warnings

import numpy as np


def transpose(f0: np.ndarray, semitones: float) -> np.ndarray:
    """`f0 · 2^(n/12)`: +12 doubles every voiced frame; unvoiced frames stay 0."""
    return np.asarray(f0) * 2.0 ** (float(semitones) / 12.0)


def median_voiced(f0: np.ndarray, window: int) -> np.ndarray:
    """Median over `window` frames of the voiced neighbours only, so a voiced run's ends are
    not pulled towards 0; unvoiced frames stay 0."""
    f0 = np.asarray(f0, dtype=np.float64)
    if window <= 1 or len(f0) == 0:
        return f0.copy()
    half = window // 2
    x = np.pad(np.where(f0 > 0, f0, np.nan), half, constant_values=np.nan)
    with warnings.catch_warnings():  # all-NaN windows: centred on unvoiced frames, kept 0
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.nanmedian(np.lib.stride_tricks.sliding_window_view(x, window), axis=1)
    return np.where(f0 > 0, med, 0.0)


def autotune(f0: np.ndarray, strength: float, a4: float = 440.0) -> np.ndarray:
    """Pull voiced frames towards the nearest equal-tempered semitone (`strength` 1 = snap)."""
    f0 = np.asarray(f0, dtype=np.float64)
    voiced = f0 > 0
    out = f0.copy()
    midi = 69.0 + 12.0 * np.log2(f0[voiced] / a4)
    note = a4 * 2.0 ** ((np.round(midi) - 69.0) / 12.0)
    out[voiced] = f0[voiced] + (note - f0[voiced]) * float(strength)
    return out
