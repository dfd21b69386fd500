"""Objective measures of a conversion: speaker similarity, pitch fidelity, reconstruction.

- **Speaker similarity**: cosine of resemblyzer's d-vectors (GE2E speaker encoder; the weights
  ship in its wheel, so it works offline), 1 = same voice.
- **Pitch fidelity**: F0 RMSE in cents over frames voiced in both tracks, after the requested
  shift; voiced/unvoiced error = share of frames whose voicing differs.
- **Reconstruction**: mel-cepstral distortion (MCD, dB) and log-mel L1 between a real slice
  and its resynthesis.
All take float32 mono numpy audio; F0 tracks are 10 ms frames in Hz, 0 = unvoiced.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from rvc.formats import ANALYSIS_RATE

MCD_K = 10.0 / math.log(10.0) * math.sqrt(2.0)  # dB per unit of natural-log cepstral distance


@functools.lru_cache(maxsize=1)
def _encoder():
    try:
        from resemblyzer import VoiceEncoder
    except ImportError as e:
        raise ImportError("speaker similarity needs resemblyzer: pip install resemblyzer") from e
    return VoiceEncoder(device="cpu", verbose=False)


def speaker_embedding(audio: np.ndarray, sr: int) -> np.ndarray:
    """The unit-norm 256-dim d-vector of an utterance (resampled to 16 kHz)."""
    from rvc.audio.process import resample

    wav = (
        audio
        if sr == ANALYSIS_RATE
        else resample(np.asarray(audio, dtype=np.float32), sr, ANALYSIS_RATE)
    )
    wav = np.asarray(wav, dtype=np.float32)
    if len(wav) < 1600 or not np.abs(wav).max() > 0:
        raise ValueError(
            f"speaker embedding needs ≥ 0.1 s of non-silent audio, got {len(wav)} samples"
        )
    emb = _encoder().embed_utterance(wav / np.abs(wav).max() * 0.5)
    return emb / np.linalg.norm(emb)


def speaker_similarity(a: np.ndarray, b: np.ndarray, sr_a: int, sr_b: int | None = None) -> float:
    """Cosine similarity of the two clips' speaker embeddings (−1..1; ~1 for the same voice)."""
    return float(speaker_embedding(a, sr_a) @ speaker_embedding(b, sr_b or sr_a))


def f0_errors(
    reference: np.ndarray, output: np.ndarray, semitones: float = 0.0
) -> tuple[float, float]:
    """(RMSE in cents over frames voiced in both, voiced/unvoiced error) of `output` against
    `reference` shifted by `semitones`. NaN RMSE when no frame is voiced in both."""
    n = min(len(reference), len(output))
    ref, out = np.asarray(reference[:n], np.float64), np.asarray(output[:n], np.float64)
    if n == 0:
        return math.nan, math.nan
    both = (ref > 0) & (out > 0)
    vuv = float(np.mean((ref > 0) != (out > 0)))
    if not both.any():
        return math.nan, vuv
    cents = 1200.0 * np.log2(out[both] / (ref[both] * 2.0 ** (semitones / 12.0)))
    return float(np.sqrt(np.mean(cents**2))), vuv


def _log_mel(audio: np.ndarray, sr: int, n_mels: int = 80, floor: float = 1e-5) -> np.ndarray:
    return np.log(np.maximum(_mel_power(audio, sr, n_mels), floor))  # [n_mels, frames]


def _mel_power(audio: np.ndarray, sr: int, n_mels: int = 80) -> np.ndarray:
    import librosa

    return librosa.feature.melspectrogram(
        y=np.asarray(audio, dtype=np.float32), sr=sr, n_fft=2048 if sr >= 32000 else 1024,
        hop_length=sr // 100, n_mels=n_mels, fmin=0.0, fmax=sr / 2, power=2.0,
    )  # fmt: skip  # [n_mels, frames]


def mel_cepstral_distortion(
    reference: np.ndarray, output: np.ndarray, sr: int, order: int = 24
) -> float:
    """MCD in dB: mel cepstra (DCT-II of the natural-log 80-band mel power, coefficients 1..order,
    energy c0 left out) compared frame by frame, averaged. 0 for identical audio."""
    from scipy.fft import dct

    a, b = _log_mel(reference, sr), _log_mel(output, sr)
    n = min(a.shape[1], b.shape[1])
    ca = dct(a[:, :n], type=2, norm="ortho", axis=0)[1 : order + 1]
    cb = dct(b[:, :n], type=2, norm="ortho", axis=0)[1 : order + 1]
    # cepstra of log *power* are twice those of log amplitude (what MCD is defined on): halve
    return float(MCD_K * np.mean(np.sqrt(np.sum((ca - cb) ** 2, axis=0)) / 2.0))


def log_mel_l1(
    reference: np.ndarray, output: np.ndarray, sr: int, floor_db: float | None = None
) -> float:
    """Mean absolute difference of natural-log 80-band mel power spectra (frames aligned).

    The floor is RVC's 1e-5 of power, or with `floor_db` that many dB under the reference's
    loudest band: differences far below the signal (a numeric noise floor) then count as none.
    """
    floor = 1e-5
    if floor_db is not None:
        floor = float(_mel_power(reference, sr).max()) * 10 ** (-floor_db / 10)
    a, b = _log_mel(reference, sr, floor=floor), _log_mel(output, sr, floor=floor)
    n = min(a.shape[1], b.shape[1])
    return float(np.mean(np.abs(a[:, :n] - b[:, :n])))
