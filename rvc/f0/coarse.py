"""Coarse pitch for the synthesizer's `emb_pitch`: F0 in Hz → integer bins 1..255 (docs/formats.md §5)."""

from __future__ import annotations

import math
from typing import TypeVar

import numpy as np
import torch

F0_MIN = 50.0
F0_MAX = 1100.0
MEL_MIN = 1127.0 * math.log(1.0 + F0_MIN / 700.0)
MEL_MAX = 1127.0 * math.log(1.0 + F0_MAX / 700.0)

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


def f0_to_coarse(f0: ArrayT) -> ArrayT:
    """Quantise F0 (Hz, 0 = unvoiced) to RVC's 1..255 mel bins; numpy → int64, torch → long.

    Computed in float64 for both kinds so numpy and torch agree bit for bit on the rounding
    (half to even, like RVC's `np.rint`).
    """
    if isinstance(f0, torch.Tensor):
        x = f0.detach().double()
        voiced = x > 0  # NaN compares False → unvoiced
        mel = 1127.0 * torch.log(1.0 + torch.where(voiced, x, torch.zeros_like(x)) / 700.0)
        mel = (mel - MEL_MIN) * 254.0 / (MEL_MAX - MEL_MIN) + 1.0
        mel = torch.where(voiced, mel, torch.ones_like(mel)).clamp(1.0, 255.0)
        return torch.round(mel).long()
    x = np.asarray(f0, dtype=np.float64)
    voiced = x > 0
    mel = 1127.0 * np.log(1.0 + np.where(voiced, x, 0.0) / 700.0)
    mel = (mel - MEL_MIN) * 254.0 / (MEL_MAX - MEL_MIN) + 1.0
    mel = np.clip(np.where(voiced, mel, 1.0), 1.0, 255.0)
    return np.rint(mel).astype(np.int64)
