"""Formant shift: a synthetic vowel's resonances move by 2^(s/12), its pitch stays; 0 is the
identity; the streaming shifter gives the whole-file result block by block."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from rvc.audio.formant import FormantShifter, shift_formants

SR = 16000
FORMANTS = (700.0, 1200.0, 2600.0)


def vowel(f0: float = 120.0, seconds: float = 1.0) -> np.ndarray:
    """A pulse train at `f0` through two-pole resonators at FORMANTS (an /a/-like vowel)."""
    x = np.zeros(int(SR * seconds))
    x[:: int(round(SR / f0))] = 1.0
    for f, bw in zip(FORMANTS, (80.0, 90.0, 120.0), strict=True):
        r = np.exp(-np.pi * bw / SR)
        x = signal.lfilter([1 - r], [1, -2 * r * np.cos(2 * np.pi * f / SR), r * r], x)
    return (0.5 * x / np.abs(x).max()).astype(np.float32)


def envelope_peaks(x: np.ndarray) -> np.ndarray:
    """Peaks (Hz) below 4 kHz (where the vowel's are) of the LPC envelope (order 12): an
    estimate independent of the shifter's own."""
    import librosa

    a = librosa.lpc(np.asarray(x[2000:-2000], dtype=np.float64), order=12)
    freqs, h = signal.freqz(1, a, worN=4096, fs=SR)
    peaks, _ = signal.find_peaks(np.abs(h))
    return freqs[peaks][freqs[peaks] < 4000]


def median_f0(x: np.ndarray) -> float:
    import parselmouth

    pitch = parselmouth.Sound(np.asarray(x, dtype=np.float64), SR).to_pitch()
    f0 = pitch.selected_array["frequency"]
    return float(np.median(f0[f0 > 0]))


def test_input_vowel_has_the_formants_it_was_made_with():
    np.testing.assert_allclose(envelope_peaks(vowel()), FORMANTS, rtol=0.03)


@pytest.mark.parametrize("semitones", [-4, -2, 2, 4])
def test_formants_move_by_the_asked_ratio_and_the_pitch_stays(semitones):
    x = vowel()
    y = shift_formants(x, semitones, SR)
    assert y.shape == x.shape and y.dtype == x.dtype and np.isfinite(y).all()
    before, after = envelope_peaks(x), envelope_peaks(y)
    assert len(after) == len(before) == 3, after
    # measured within 2.5 % of 2^(s/12) (the vowel's 120 Hz harmonics sample the envelope)
    np.testing.assert_allclose(after / before, 2 ** (semitones / 12), rtol=0.04)
    cents = 1200 * np.log2(median_f0(y) / median_f0(x))
    assert abs(cents) < 5, cents


def test_zero_is_the_exact_identity():
    x = vowel()
    assert shift_formants(x, 0.0) is x


def test_no_shift_through_the_shifter_reconstructs_the_input():
    """Factor 1 through the whole STFT path: the overlap-add gives the input back."""
    x = vowel()
    shifter = FormantShifter(0.0)
    y = shifter.push(np.concatenate([x, np.zeros(shifter.latency, np.float32)]))
    np.testing.assert_allclose(y[shifter.latency :], x, atol=1e-6)


@pytest.mark.parametrize("block", [160, 4000, 1234])
def test_streamed_blocks_equal_the_whole_file(block):
    x = vowel(seconds=0.6)
    whole = shift_formants(x, 3.0)
    shifter = FormantShifter(3.0)
    padded = np.concatenate([x, np.zeros(shifter.latency + 160, np.float32)])
    out = np.concatenate(
        [shifter.push(padded[i : i + block]) for i in range(0, len(padded), block)]
    )
    assert shifter.latency % 160 == 0  # whole 10 ms frames: a stream's delay stays on its grid
    np.testing.assert_allclose(out[shifter.latency : shifter.latency + len(x)], whole, atol=1e-5)


def test_a_new_lifter_mid_stream_keeps_the_stream_going():
    x = vowel(seconds=0.6)
    shifter = FormantShifter(3.0)
    first = shifter.push(x[:4800])
    shifter.set_quefrency(2.0)  # live.set_options(formant_quefrency=2): no restart, no gap
    rest = shifter.push(x[4800:])
    frames = np.concatenate([first, rest])[shifter.latency :].reshape(-1, 160)
    assert np.sqrt((frames**2).mean(axis=1)).min() > 0.1 * np.sqrt((x**2).mean())


def test_whole_frames_in_give_as_many_samples_out():
    shifter = FormantShifter(-2.0)
    sizes = [160, 4000, 480]
    assert [len(shifter.push(np.zeros(n, np.float32))) for n in sizes] == sizes


def test_out_of_range_is_refused_by_the_options():
    from rvc.infer import ConvertOptions

    with pytest.raises(ValueError, match="formant"):
        ConvertOptions(formant=13)
    with pytest.raises(ValueError, match="formant_quefrency"):
        ConvertOptions(formant=2, formant_quefrency=0)
