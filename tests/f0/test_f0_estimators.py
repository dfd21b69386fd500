"""CREPE (tiny), FCPE, Harvest and PM on synthetic tones of known F0 (CPU, packaged weights only)."""

from __future__ import annotations

import numpy as np
import pytest

from rvc.f0.base import F0Estimator, n_frames
from rvc.f0.crepe import CrepeEstimator
from rvc.f0.dsp import HarvestEstimator, PMEstimator
from rvc.f0.fcpe import FCPEEstimator

# Tolerances: median |error| on frames both voiced (truth and estimate) < 20 cents; voiced /
# unvoiced agreement > 95 % on frames more than 50 ms from a voicing boundary.
MAX_MEDIAN_CENTS = 20.0
MIN_VUV_AGREEMENT = 0.95

FACTORIES = {
    "crepe_tiny": lambda: CrepeEstimator(model="tiny"),
    "fcpe": lambda: FCPEEstimator(),
    "harvest": lambda: HarvestEstimator(),
    "pm": lambda: PMEstimator(),
}

_cache: dict[str, F0Estimator] = {}


def get(name: str) -> F0Estimator:
    """One instance per estimator for the whole module: weights load once."""
    if name not in _cache:
        _cache[name] = FACTORIES[name]()
    return _cache[name]


def score(f0: np.ndarray, truth: np.ndarray, care: np.ndarray) -> tuple[float, float]:
    """(median cents error on jointly voiced cared-for frames, V/UV agreement on cared-for frames)."""
    both = (f0 > 0) & (truth > 0) & care
    assert both.sum() > 0.8 * (truth[care] > 0).sum(), "too few voiced frames to score"
    cents = 1200 * np.abs(np.log2(f0[both] / truth[both]))
    agreement = ((f0 > 0) == (truth > 0))[care].mean()
    return float(np.median(cents)), float(agreement)


@pytest.mark.parametrize("name", list(FACTORIES))
def test_accuracy_on_tones_and_glide(name, tone_signals, voicing_care):
    est = get(name)
    for label, (audio, truth) in tone_signals.items():
        f0 = est.compute(audio)
        assert f0.dtype == np.float32 and f0.shape == (len(audio) // 160,)
        assert np.isfinite(f0).all() and (f0 >= 0).all()
        med, agree = score(f0, truth, voicing_care(truth))
        assert med < MAX_MEDIAN_CENTS, f"{name} on {label}: median error {med:.1f} cents"
        assert agree > MIN_VUV_AGREEMENT, f"{name} on {label}: V/UV agreement {agree:.3f}"


@pytest.mark.parametrize("name", list(FACTORIES))
def test_silence_is_unvoiced(name):
    f0 = get(name).compute(np.zeros(8000, dtype=np.float32))
    assert f0.shape == (50,)
    assert (f0 == 0).all()


@pytest.mark.parametrize("name", list(FACTORIES))
def test_frame_count_on_odd_lengths(name, make_tone):
    audio, _ = make_tone(200.0, dur=0.3, pre=0.05, post=0.05, extra=0)
    for length in (100, 159, 160, 161, 1999, 4801, len(audio) - 3):
        f0 = get(name).compute(audio[:length])
        assert f0.shape == (n_frames(length),) == (length // 160,), (name, length)
        assert f0.dtype == np.float32


@pytest.mark.parametrize("name", list(FACTORIES))
def test_batch_equals_single(name, make_tone):
    est = get(name)
    a, _ = make_tone(180.0, dur=0.4, pre=0.05, post=0.05, extra=13, seed=5)
    b, _ = make_tone(330.0, dur=0.4, pre=0.05, post=0.05, extra=13, seed=6)  # same length as a
    c, _ = make_tone(250.0, 400.0, dur=0.3, pre=0.1, post=0.02, extra=5, seed=7)
    clips = [a, c[:100], b, c]
    batched = est.compute_batch(clips)
    assert len(batched) == len(clips)
    for clip, got in zip(clips, batched, strict=True):
        want = est.compute(clip)
        assert got.shape == want.shape == (len(clip) // 160,)
        # same voicing; Hz equal up to float noise from batch-size-dependent kernels
        np.testing.assert_array_equal(got > 0, want > 0)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("name", list(FACTORIES))
def test_bad_input_is_a_clear_error(name):
    est = get(name)
    with pytest.raises(ValueError, match="mono"):
        est.compute(np.zeros((2, 1600), dtype=np.float32))
    bad = np.zeros(1600, dtype=np.float32)
    bad[10] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        est.compute(bad)


def test_range_limits_mask_out_of_range_pitch(tone_signals):
    audio, truth = tone_signals["440Hz"]
    f0 = FCPEEstimator(f0_min=50, f0_max=300).compute(audio)
    assert (f0 <= 300).all()
    assert (f0[truth > 0] == 0).mean() > 0.9  # a 440 Hz tone is out of range → unvoiced


def test_crepe_rejects_unknown_model():
    with pytest.raises(ValueError, match="full"):
        CrepeEstimator(model="huge")


def test_crepe_silence_gate():
    # CREPE normalises each window, so a faint tone is as "periodic" as a loud one: the level gate
    # alone decides; with the gate off the tone at -70 dBFS comes through
    t = np.arange(8000) / 16000
    faint = (10 ** (-70 / 20) * np.sqrt(2) * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    assert (get("crepe_tiny").compute(faint) == 0).all()
    ungated = CrepeEstimator(model="tiny", silence_db=None).compute(faint)
    assert (ungated[5:-5] > 0).mean() > 0.9


@pytest.mark.slow
def test_crepe_full_accuracy_and_silence(tone_signals, voicing_care):
    est = CrepeEstimator(model="full")
    for label, (audio, truth) in tone_signals.items():
        med, agree = score(est.compute(audio), truth, voicing_care(truth))
        assert med < MAX_MEDIAN_CENTS and agree > MIN_VUV_AGREEMENT, (label, med, agree)
    assert (est.compute(np.zeros(8000, dtype=np.float32)) == 0).all()


def test_harvest_extraction_track_is_unfiltered_as_rvcs(make_tone):
    """RVC's extraction stores WORLD harvest + stonemask as is; only conversion median-filters
    (`for_conversion`, over all WORLD frames before the last is dropped)."""
    import pyworld
    from scipy import signal

    audio, _ = make_tone(180.0, dur=0.4, pre=0.1, post=0.1, seed=7)
    x = audio.astype(np.float64)
    raw, t = pyworld.harvest(x, 16000, f0_floor=50, f0_ceil=1100, frame_period=10)
    raw = pyworld.stonemask(x, raw, t, 16000)
    n = len(audio) // 160
    est = HarvestEstimator()
    np.testing.assert_allclose(est.compute(audio), raw[:n].astype(np.float32), rtol=1e-6)
    filtered = signal.medfilt(raw, 3)[:n].astype(np.float32)
    assert not np.array_equal(filtered, raw[:n].astype(np.float32))
    np.testing.assert_allclose(est.for_conversion(audio, filter_radius=3), filtered, rtol=1e-6)
    np.testing.assert_array_equal(est.for_conversion(audio, filter_radius=2), est.compute(audio))
