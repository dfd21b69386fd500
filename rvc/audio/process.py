"""Signal processing for dataset preparation: high-pass, normalisation, resampling, denoising,
and the quality measures the dataset audit reports. Inputs and outputs are float32 `[T]`.

Normalisation as in RVC / Applio preprocessing: each piece of audio `x` becomes
`x / max|x| * (max_peak * alpha) + (1 - alpha) * x` with `max_peak` 0.9 and `alpha` 0.75, a
blend of peak normalisation (75 %) and the original level (25 %). Applio's `normalization_mode`
says *where* it is applied: "pre" normalises the whole file once, after the high-pass and
before noise reduction and slicing; "post" (Applio's default) normalises every slice on its
own, so quiet and loud passages end up at similar peaks; "none" leaves the level alone.
RVC/Applio also drop a slice whose peak exceeds `RVC_REJECT_PEAK` (only possible with float
input), which callers may reproduce with `peak_db`.
"""

from __future__ import annotations

import numpy as np

DB_FLOOR = -120.0  # what level measures report for digital silence (finite, JSON-friendly)
RVC_REJECT_PEAK = 2.5
_EPS = 10 ** (DB_FLOOR / 10)  # power floor matching DB_FLOOR


def _f32(audio: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(audio, dtype=np.float32)


def highpass(
    audio: np.ndarray, sr: int, cutoff: float = 48.0, order: int = 5, zero_phase: bool = True
) -> np.ndarray:
    """Butterworth high-pass (RVC: 5th order, 48 Hz) that removes rumble and DC.

    RVC filters causally (`lfilter`, phase-shifted); `zero_phase=True` runs the filter forwards
    and backwards instead, so slices stay time-aligned, at the price of squaring the magnitude
    response (-6 dB at `cutoff` rather than -3 dB, twice the stop-band slope).
    """
    from scipy import signal  # imported here: scipy.signal takes ~1 s to import

    # second-order sections: at 48 Hz and 48 kHz the poles sit near |z| = 1, where the
    # transfer-function (b, a) form is numerically ill-conditioned
    sos = signal.butter(order, cutoff, btype="highpass", fs=sr, output="sos")
    x = np.asarray(audio, dtype=np.float64)
    if x.size == 0:  # nothing to filter (scipy's filtfilt would fail on the empty padding)
        return _f32(x)
    if zero_phase:
        padlen = min(3 * (2 * len(sos) + 1), max(0, len(x) - 1))
        y = signal.sosfiltfilt(sos, x, padlen=padlen)
    else:
        y = signal.sosfilt(sos, x)
    return _f32(y)


def normalize(audio: np.ndarray, max_peak: float = 0.9, alpha: float = 0.75) -> np.ndarray:
    """RVC's normalisation: `x / max|x| * max_peak * alpha + (1 - alpha) * x` (see module doc).

    `alpha=1` is plain peak normalisation to `max_peak`. Silence is returned unchanged.
    """
    x = np.asarray(audio, dtype=np.float32)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak == 0.0:
        return _f32(x)
    return _f32(x / peak * (max_peak * alpha) + (1.0 - alpha) * x)


def resample(audio: np.ndarray, sr_in: int, sr_out: int, quality: str = "HQ") -> np.ndarray:
    """Resample `[T]` (or `[T, C]`) with soxr; returns float32."""
    x = _f32(audio)
    if int(sr_in) == int(sr_out):
        return x
    import soxr

    return _f32(soxr.resample(x, int(sr_in), int(sr_out), quality=quality))


def reduce_noise(
    audio: np.ndarray, sr: int, strength: float = 0.5, stationary: bool = False
) -> np.ndarray:
    """Spectral-gating noise reduction (noisereduce, optional extra); `strength` in 0..1.

    Defaults as Applio (non-stationary gating, strength 0.5). It also dulls the voice a little
    and can erase steady tones, so it is off unless a dataset is noisy.
    """
    try:
        import noisereduce
    except ImportError as e:
        raise ImportError(
            "noise reduction needs the optional 'noisereduce' package: "
            "pip install 'rvc-lightning[denoise]'"
        ) from e
    x = _f32(audio)
    return _f32(
        noisereduce.reduce_noise(
            y=x, sr=sr, prop_decrease=strength, stationary=stationary, n_jobs=1
        )
    )


def _db(power: float) -> float:
    return float(max(DB_FLOOR, 10 * np.log10(max(power, _EPS))))


def peak_db(audio: np.ndarray) -> float:
    """Peak level in dBFS (`DB_FLOOR` for silence or empty input)."""
    x = np.asarray(audio)
    return _db(float(np.max(np.abs(x))) ** 2) if x.size else DB_FLOOR


def rms_db(audio: np.ndarray) -> float:
    """RMS level in dBFS (`DB_FLOOR` for silence or empty input)."""
    x = np.asarray(audio)
    return _db(float(np.mean(np.square(x, dtype=np.float64)))) if x.size else DB_FLOOR


def clipped_fraction(audio: np.ndarray, threshold: float = 0.999) -> float:
    """Fraction of samples at or beyond `threshold` full scale (a sign of clipping)."""
    x = np.asarray(audio)
    return float(np.mean(np.abs(x) >= threshold)) if x.size else 0.0


def is_silent(audio: np.ndarray, threshold_db: float = -60.0) -> bool:
    """True if the peak level is below `threshold_db` dBFS."""
    return peak_db(audio) < threshold_db


def estimate_snr_db(
    audio: np.ndarray,
    sr: int,
    frame: float = 0.02,
    loud_pct: float = 95.0,
    quiet_pct: float = 10.0,
    max_db: float = 100.0,
) -> float:
    """Rough SNR in dB from frame energies: loud frames vs the quiet-frame noise floor.

    An estimate, not a measurement: it takes the `quiet_pct` percentile of 20 ms frame powers
    as the noise floor and the `loud_pct` percentile as signal + noise, so it assumes the
    recording has pauses (speech does). A steady tone without pauses reads as ~0 dB; digital
    silence between phrases reads as `max_db`. Clipped to [0, max_db].
    """
    x = np.asarray(audio, dtype=np.float64)
    n = max(1, round(frame * sr))
    frames = x[: len(x) // n * n].reshape(-1, n) if len(x) >= n else x.reshape(1, -1)
    if frames.size == 0:
        return 0.0
    power = np.mean(frames**2, axis=1)  # [n_frames]
    loud, quiet = np.percentile(power, [loud_pct, quiet_pct])
    snr = 10 * np.log10(max(loud - quiet, _EPS) / max(quiet, _EPS))
    return float(np.clip(snr, 0.0, max_db))
