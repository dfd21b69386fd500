"""Synthetic test signals of known F0 for the estimator tests."""

from __future__ import annotations

import numpy as np
import pytest

SR = 16000
HOP = 160


def harmonic_tone(
    f_start: float,
    f_end: float | None = None,
    dur: float = 1.0,
    pre: float = 0.3,
    post: float = 0.3,
    noise: float = 1e-3,
    extra: int = 77,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """A 3-harmonic tone (exponential glide if `f_end`) between silences → (audio [T], true F0 per frame).

    Low-level noise (≈ −54 dB re the tone) rides on the tone only, like breath noise: WORLD
    Harvest will not voice a perfectly stationary digital tone, and it voices a noise floor in
    silence. `extra` makes T odd-sized.
    """
    f_end = f_start if f_end is None else f_end
    n = int(dur * SR)
    t = np.arange(n) / SR
    freq = f_start * (f_end / f_start) ** (t / dur)
    phase = 2 * np.pi * np.cumsum(freq) / SR
    y = np.sin(phase) + 0.5 * np.sin(2 * phase) + 0.25 * np.sin(3 * phase)
    y = 0.5 * y / np.abs(y).max()
    y += noise * np.random.default_rng(seed).standard_normal(n)
    ramp = int(0.01 * SR)  # 10 ms fades: no clicks at the edges
    y[:ramp] *= np.linspace(0, 1, ramp)
    y[-ramp:] *= np.linspace(1, 0, ramp)
    n_pre, n_post = int(pre * SR), int(post * SR) + extra
    audio = np.concatenate([np.zeros(n_pre), y, np.zeros(n_post)])
    # truth on our frame grid: frame i is centred on sample 160·i
    centres = np.arange(len(audio) // HOP) * HOP
    inside = (centres >= n_pre) & (centres < n_pre + n)
    truth = np.zeros(len(centres))
    truth[inside] = f_start * (f_end / f_start) ** ((centres[inside] - n_pre) / SR / dur)
    return audio.astype(np.float32), truth


def care_mask(truth: np.ndarray, margin: int = 5) -> np.ndarray:
    """Frames farther than `margin` frames (50 ms) from a voicing boundary, where windows straddle it."""
    voiced = truth > 0
    care = np.ones(len(truth), dtype=bool)
    for b in np.flatnonzero(np.diff(voiced.astype(int))):
        care[max(0, b - margin) : b + margin + 1] = False
    return care


@pytest.fixture(scope="session")
def tone_signals() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """110, 220, 440 Hz tones and a 150 → 300 Hz glide, each 1 s between 0.3 s silences."""
    return {
        "110Hz": harmonic_tone(110.0, seed=1),
        "220Hz": harmonic_tone(220.0, seed=2),
        "440Hz": harmonic_tone(440.0, seed=3),
        "glide150-300": harmonic_tone(150.0, 300.0, seed=4),
    }


@pytest.fixture(scope="session")
def make_tone():
    """The `harmonic_tone` builder, for tests that need their own signal."""
    return harmonic_tone


@pytest.fixture(scope="session")
def voicing_care():
    """The `care_mask` helper."""
    return care_mask
