"""Shared helpers for F0 estimators: input checks, frame-count fitting, range masking, grouping.

Frame convention for every estimator: frame i is (about) centred on sample i·160 of the 16 kHz
input, and there are exactly `T // 160` frames. Estimators that produce one frame more
(centre-padded STFTs: RMVPE, CREPE, FCPE, WORLD) drop the trailing extra frame; estimators that
produce fewer (Praat) place their frames on this grid by time and leave the rest unvoiced.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import numpy as np

from rvc.f0.base import n_frames


def check_audio(audio: np.ndarray) -> np.ndarray:
    """Validate one 16 kHz clip and return it as contiguous float32 [T]."""
    a = np.asarray(audio)
    if a.ndim != 1:
        raise ValueError(f"F0 input must be mono audio of shape [T], got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.number):
        raise ValueError(f"F0 input must be numeric audio, got dtype {a.dtype}")
    a = np.ascontiguousarray(a, dtype=np.float32)
    if not np.isfinite(a).all():
        raise ValueError("F0 input audio contains NaN or inf samples")
    return a


def fit_frames(f0: np.ndarray, n_samples: int) -> np.ndarray:
    """Trim (or zero-pad at the end) an F0 track to `T // 160` frames, as float32."""
    n = n_frames(n_samples)
    f0 = np.asarray(f0, dtype=np.float32).reshape(-1)
    if len(f0) >= n:
        return np.ascontiguousarray(f0[:n])
    return np.pad(f0, (0, n - len(f0)))


def mask_range(f0: np.ndarray, f0_min: float, f0_max: float) -> np.ndarray:
    """Set frames outside [f0_min, f0_max] (and NaN) to 0 = unvoiced; returns a new array."""
    f0 = np.nan_to_num(np.asarray(f0, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    return np.where((f0 >= f0_min) & (f0 <= f0_max), f0, 0.0).astype(np.float32)


def group_by_length(audios: list[np.ndarray]) -> dict[int, list[int]]:
    """Indices of `audios` grouped by exact length (insertion order kept).

    Whole-clip networks (RMVPE's U-Net + BiGRU, FCPE) see every frame of the input, so padding
    clips to a common length would change their output; only equal-length clips share a batch.
    """
    groups: dict[int, list[int]] = defaultdict(list)
    for i, a in enumerate(audios):
        groups[len(a)].append(i)
    return dict(groups)


def batch_equal_lengths(
    audios: list[np.ndarray],
    batch_size: int,
    infer: Callable[[np.ndarray], np.ndarray],
    f0_min: float,
    f0_max: float,
) -> list[np.ndarray]:
    """Run `infer` ([B, T] → [B, N] Hz) on equal-length groups; fit and mask each clip's F0.

    Whole-clip models (U-Net/BiGRU, FCPE) change their output under padding, so only clips
    of exactly the same length share a forward pass.
    """
    audios = [check_audio(a) for a in audios]
    out: list[np.ndarray] = [np.zeros(0, dtype=np.float32)] * len(audios)
    for length, idx in group_by_length(audios).items():
        if n_frames(length) == 0:
            continue
        for s in range(0, len(idx), batch_size):
            chunk = idx[s : s + batch_size]
            f0 = infer(np.stack([audios[i] for i in chunk]))
            for row, i in zip(f0, chunk, strict=True):
                out[i] = mask_range(fit_frames(row, length), f0_min, f0_max)
    return out
