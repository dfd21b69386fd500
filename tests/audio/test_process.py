import sys

import numpy as np
import pytest

from rvc.audio import process

SR = 16000


def sine(freq: float, seconds: float = 1.0, amp: float = 0.5, sr: int = SR) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * np.arange(round(seconds * sr)) / sr)).astype(np.float32)


def amplitude_at(x: np.ndarray, freq: float, sr: int = SR) -> float:
    """Amplitude of the `freq` component over the middle half (edges hold filter transients)."""
    n = len(x)
    t = np.arange(n)[n // 4 : 3 * n // 4] / sr
    seg = x[n // 4 : 3 * n // 4].astype(np.float64)
    return 2 * abs(np.mean(seg * np.exp(-2j * np.pi * freq * t)))


@pytest.mark.parametrize("zero_phase,min_atten", [(True, 60.0), (False, 30.0)])
def test_highpass_removes_rumble_keeps_voice(zero_phase, min_atten):
    x = sine(20.0, seconds=4.0) + sine(1000.0, seconds=4.0)
    y = process.highpass(x, SR, cutoff=48.0, zero_phase=zero_phase)
    assert y.dtype == np.float32 and y.shape == x.shape
    atten_20 = 20 * np.log10(amplitude_at(x, 20.0) / amplitude_at(y, 20.0))
    gain_1k = 20 * np.log10(amplitude_at(y, 1000.0) / amplitude_at(x, 1000.0))
    assert atten_20 >= min_atten
    assert abs(gain_1k) < 0.5


def test_highpass_removes_dc_and_handles_short_input():
    y = process.highpass(np.full(SR, 0.3, np.float32) + sine(1000.0), SR)
    assert abs(np.mean(y[SR // 4 : -SR // 4])) < 1e-3
    assert process.highpass(np.ones(5, np.float32), SR).shape == (5,)


def test_normalize_follows_rvc_formula():
    x = sine(440.0, amp=0.2) + 0.01
    peak = np.abs(x).max()
    y = process.normalize(x, max_peak=0.9, alpha=0.75)
    np.testing.assert_allclose(y, x / peak * 0.675 + 0.25 * x, rtol=1e-6)
    assert np.abs(y).max() == pytest.approx(0.9 * 0.75 + 0.25 * peak, rel=1e-5)
    assert np.abs(process.normalize(x, max_peak=0.95, alpha=1.0)).max() == pytest.approx(0.95)
    # quiet and loud inputs end up close in level: mostly peak normalisation
    q, loud = process.normalize(0.01 * x), process.normalize(0.9 * x)
    assert np.abs(q).max() > 0.6 and np.abs(loud).max() < 0.93
    z = np.zeros(100, np.float32)
    np.testing.assert_array_equal(process.normalize(z), z)


@pytest.mark.parametrize("sr_in,sr_out", [(44100, 16000), (8000, 40000), (48000, 32000)])
def test_resample_keeps_duration_and_pitch(sr_in, sr_out):
    x = sine(1000.0, seconds=1.0, sr=sr_in)
    y = process.resample(x, sr_in, sr_out)
    assert y.dtype == np.float32 and abs(len(y) - sr_out) <= 1
    spec = np.abs(np.fft.rfft(y))
    assert np.argmax(spec) * sr_out / len(y) == pytest.approx(1000.0, abs=2.0)
    np.testing.assert_array_equal(process.resample(x, sr_in, sr_in), x)


def speechlike(seed: int = 0) -> np.ndarray:
    """Harmonic 'syllables' with gliding pitch and vibrato, separated by pauses."""
    rng = np.random.default_rng(seed)
    parts = [np.zeros(SR // 2)]
    for _ in range(6):
        t = np.arange(round(rng.uniform(0.15, 0.35) * SR)) / SR
        phase = (
            2
            * np.pi
            * np.cumsum(rng.uniform(120, 250) * (1 + 0.1 * np.sin(2 * np.pi * 5 * t) + 0.3 * t))
            / SR
        )
        parts.append(0.3 * np.hanning(len(t)) * sum(np.sin(k * phase) / k for k in range(1, 6)))
        parts.append(np.zeros(round(rng.uniform(0.1, 0.3) * SR)))
    return np.concatenate(parts)


def test_reduce_noise_lowers_noise_floor():
    clean = speechlike()
    noisy = (clean + 0.02 * np.random.default_rng(1).standard_normal(len(clean))).astype(np.float32)
    voiced = np.abs(clean) > 0.05
    y = process.reduce_noise(noisy, SR, strength=0.5)
    assert y.shape == noisy.shape and y.dtype == np.float32 and np.isfinite(y).all()
    pause = slice(0, SR // 4)
    assert process.rms_db(y[pause]) < process.rms_db(noisy[pause]) - 3  # noise in the pause drops
    assert process.rms_db(y[voiced]) > process.rms_db(clean[voiced]) - 6  # the voice stays
    stronger = process.reduce_noise(noisy, SR, strength=1.0)
    assert process.rms_db(stronger[pause]) < process.rms_db(y[pause]) - 3


def test_reduce_noise_without_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "noisereduce", None)
    with pytest.raises(ImportError, match=r"rvc-lightning\[denoise\]"):
        process.reduce_noise(sine(440.0), SR)


def test_levels():
    x = sine(440.0, amp=0.5)
    assert process.peak_db(x) == pytest.approx(20 * np.log10(0.5), abs=0.01)
    assert process.rms_db(x) == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.01)
    z = np.zeros(10)
    assert process.peak_db(z) == process.rms_db(z) == process.DB_FLOOR
    assert process.is_silent(z) and process.is_silent(x * 1e-4)  # -86 dBFS
    assert not process.is_silent(x) and not process.is_silent(x * 1e-2, threshold_db=-60)


def test_clipped_fraction():
    x = np.clip(sine(440.0, amp=2.0), -1.0, 1.0)
    frac = process.clipped_fraction(x)
    # |2 sin| >= 0.999 for the phase share where |sin| >= 0.4995: 1 - 2/pi * asin(0.4995)
    assert frac == pytest.approx(1 - 2 / np.pi * np.arcsin(0.4995), abs=0.01)
    assert process.clipped_fraction(sine(440.0, amp=0.5)) == 0.0


@pytest.mark.parametrize("true_snr", [10.0, 20.0, 30.0])
def test_estimate_snr(true_snr):
    rng = np.random.default_rng(1)
    # speech-like: bursts with pauses, white noise at a known level under everything
    bursts = np.concatenate(
        [np.concatenate([sine(300.0, 0.6), np.zeros(SR * 4 // 10)]) for _ in range(5)]
    )
    sig_power = 0.5**2 / 2
    noise = np.sqrt(sig_power / 10 ** (true_snr / 10)) * rng.standard_normal(len(bursts))
    est = process.estimate_snr_db((bursts + noise).astype(np.float32), SR)
    assert est == pytest.approx(true_snr, abs=3.0)
    assert process.estimate_snr_db(bursts.astype(np.float32), SR) == 100.0  # digital-silence pauses
    assert process.estimate_snr_db(np.zeros(10, np.float32), SR) == 0.0
