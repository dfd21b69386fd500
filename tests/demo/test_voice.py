"""Tests for the synthetic demo speaker: determinism, levels, pauses, true pitch, formants."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from rvc.demo.voice import (
    SPEAKERS,
    VOWELS,
    main,
    make_demo_dataset,
    plan_utterance,
    render,
    synthesize_utterance,
)

SR = 40000


def frame_db(audio: np.ndarray, hop: int) -> np.ndarray:
    """RMS level in dBFS of consecutive `hop`-sample frames."""
    frames = audio[: len(audio) // hop * hop].reshape(-1, hop)
    return 20 * np.log10(np.sqrt(np.mean(frames.astype(np.float64) ** 2, 1)) + 1e-12)


@pytest.fixture(scope="module")
def utterance() -> tuple[np.ndarray, np.ndarray]:
    return synthesize_utterance(np.random.default_rng(7), SR, 12.0)


def test_same_seed_same_audio_different_seed_different():
    a1, f1 = synthesize_utterance(np.random.default_rng(3), SR, 4.0)
    a2, f2 = synthesize_utterance(np.random.default_rng(3), SR, 4.0)
    a3, _ = synthesize_utterance(np.random.default_rng(4), SR, 4.0)
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_array_equal(f1, f2)
    assert a1.shape == a3.shape and not np.allclose(a1, a3)


def test_shapes_and_levels(utterance):
    audio, f0 = utterance
    assert audio.dtype == np.float32 and audio.shape == (12 * SR,)
    assert f0.dtype == np.float32 and f0.shape == (12 * 100,)
    assert np.isfinite(audio).all()
    peak = np.abs(audio).max()
    assert 0.1 < peak < 0.9  # audible, below 0 dBFS with headroom, never clipped
    voiced = f0[f0 > 0]
    assert 0.3 < len(voiced) / len(f0) < 0.8
    lo, hi = SPEAKERS[0][0] * 2 ** (-4 / 12), SPEAKERS[0][0] * 2 ** (8 / 12)
    assert lo < voiced.min() and voiced.max() < hi  # speech-like range around the base F0
    assert np.ptp(np.log2(voiced)) * 12 > 3  # the contour moves (declination, accents)


def test_pauses_below_slicer_threshold(utterance):
    audio, _ = utterance
    db = frame_db(audio, SR // 100)
    quiet = db < -42
    assert 0.10 < quiet.mean() < 0.40
    assert db.min() < -60  # the noise floor sits far below the threshold
    # at least one pause long enough for the RVC slicer (min_interval 300-400 ms)
    runs = np.diff(np.flatnonzero(np.diff(np.r_[0, quiet.astype(int), 0])).reshape(-1, 2), 1)
    assert runs.max() >= 50


@pytest.mark.parametrize("speaker", [0, 1])
def test_true_f0_matches_harvest(speaker):
    import pyworld
    import soxr

    audio, f0 = synthesize_utterance(np.random.default_rng(11 + speaker), SR, 6.0, speaker)
    x = soxr.resample(audio.astype(np.float64), SR, 16000)
    est, _ = pyworld.harvest(x, 16000, f0_floor=50, f0_ceil=1100, frame_period=10)
    n = min(len(est), len(f0))
    both = (est[:n] > 0) & (f0[:n] > 0)
    assert both.sum() > 0.25 * n
    cents = 1200 * np.abs(np.log2(est[:n][both] / f0[:n][both]))
    assert np.median(cents) < 30
    assert np.mean(cents > 100) < 0.1  # no octave errors on the bulk


def lpc_peaks(chunks: list[np.ndarray], sr: int, order: int = 14) -> np.ndarray:
    """Peak frequencies (Hz) of an LPC envelope fitted to the average spectrum of the chunks.

    Averaging 25 ms frames over several segments (different F0s) keeps LPC from locking onto
    single harmonics.
    """
    from scipy.linalg import solve_toeplitz
    from scipy.signal import lfilter

    power = []
    for x in chunks:
        x = lfilter([1.0, -0.9], [1.0], x)  # pre-emphasis flattens the glottal tilt
        for i in range(0, len(x) - 256 + 1, 64):
            power.append(np.abs(np.fft.rfft(x[i : i + 256] * np.hanning(256), 1024)) ** 2)
    r = np.fft.irfft(np.mean(power, 0))[: order + 1]  # autocorrelation of the mean spectrum
    a = np.r_[1.0, -solve_toeplitz(r[:-1], r[1:])]
    h = 1 / np.abs(np.fft.rfft(a, 4096))
    i = np.flatnonzero((h[1:-1] > h[:-2]) & (h[1:-1] > h[2:])) + 1
    return np.fft.rfftfreq(4096, 1 / sr)[i]


@pytest.mark.parametrize("speaker", [0, 1])
def test_vowels_have_formant_peaks(speaker):
    import soxr

    sr = 10000
    rng = np.random.default_rng(5)
    plan = plan_utterance(rng, 15.0)
    x = soxr.resample(render(plan, rng, SR, speaker)[0], SR, sr)
    scale = SPEAKERS[speaker][1]
    checked = 0
    for label, (f1, f2, *_) in VOWELS.items():
        segs = [s for s in plan.segments if s.kind == "vowel" and s.label == label]
        if not segs:
            continue
        # the middle 40 % of a vowel sits on its formant targets (transitions take 30 % a side)
        chunks = [
            x[int((0.7 * s.t0 + 0.3 * s.t1) * sr) : int((0.3 * s.t0 + 0.7 * s.t1) * sr)]
            for s in segs
        ]
        peaks = lpc_peaks(chunks, sr)
        f1, f2 = f1 * scale, f2 * scale
        if label == "o":  # F1, F2 only ~300 Hz apart: LPC merges them or locks onto harmonics
            assert 0.75 * f1 < peaks.min() < 1.15 * f2, (label, peaks)
        else:
            for f in (f1, f2):
                assert np.min(np.abs(peaks - f)) < max(0.15 * f, 90), (label, f, peaks)
        checked += 1
    assert checked >= 4


def test_empty_when_too_short():
    audio, f0 = synthesize_utterance(np.random.default_rng(0), 16000, 0.5)
    assert audio.shape == (8000,) and f0.shape == (50,)
    assert not f0.any() and np.abs(audio).max() < 0.01


def test_bad_speaker_raises():
    with pytest.raises(ValueError, match="speaker"):
        synthesize_utterance(np.random.default_rng(0), SR, 1.0, speaker=len(SPEAKERS))
    with pytest.raises(ValueError, match="speakers"):
        make_demo_dataset("unused", speakers=0)


def test_dataset_layout_duration_and_bytes(tmp_path):
    kw = dict(minutes=0.4, sr=16000, seed=1, speakers=2)
    paths = make_demo_dataset(tmp_path / "a", **kw)
    again = make_demo_dataset(tmp_path / "b", **kw)
    assert [p.read_bytes() for p in paths] == [p.read_bytes() for p in again]
    assert {p.parent.name for p in paths} == {"0", "1"}
    for spk in ("0", "1"):
        clips = [p for p in paths if p.parent.name == spk]
        total = sum(sf.info(str(p)).duration for p in clips)
        assert abs(total - 24.0) < 0.05 * 24.0
        for p in clips:
            info = sf.info(str(p))
            assert info.samplerate == 16000 and info.subtype == "PCM_16" and info.channels == 1
            assert 10.0 <= info.duration <= 40.0
            f0 = np.load(tmp_path / "a" / "truth" / spk / f"{p.stem}.f0.npy")
            assert f0.shape == (info.frames // 160,)
    assert not list((tmp_path / "a").rglob(".*"))  # no temp files left behind
    other = make_demo_dataset(tmp_path / "c", minutes=0.4, sr=16000, seed=2, speakers=1)
    assert other[0].parent == tmp_path / "c"
    assert other[0].read_bytes() != paths[0].read_bytes()


def test_cli_prints_what_it_wrote(tmp_path, capsys):
    main([str(tmp_path), "--minutes", "0.5", "--sr", "16000"])
    out = capsys.readouterr().out.splitlines()
    wavs = sorted(tmp_path.glob("*.wav"))
    assert len(wavs) == 2 and len(out) == 1  # one line for the folder, not one per clip
    assert out[0].startswith(f"wrote 2 clips to {tmp_path}, 0.5 min per speaker")
    assert (tmp_path / "truth" / f"{wavs[0].stem}.f0.npy").exists()


def test_cli_verbose_lists_each_clip(tmp_path, capsys):
    main([str(tmp_path), "--minutes", "0.2", "--sr", "16000", "--verbose"])
    out = capsys.readouterr().out
    wavs = sorted(tmp_path.glob("*.wav"))
    assert wavs and all(str(w) in out for w in wavs)
