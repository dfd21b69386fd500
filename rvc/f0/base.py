"""The F0 estimator interface: 16 kHz mono audio in, F0 in Hz per 10 ms frame out."""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16000
HOP = 160  # 10 ms at 16 kHz


def n_frames(n_samples: int) -> int:
    """Frames an estimator returns for `n_samples` of 16 kHz audio (RVC's `len // hop`)."""
    return n_samples // HOP


class F0Estimator:
    """Base class. Subclasses implement `compute`; batched models also override `compute_batch`.

    Output: float32 F0 in Hz, shape [n_frames(len(audio))], 0.0 on unvoiced frames.
    """

    name = "base"

    def __init__(self, f0_min: float = 50.0, f0_max: float = 1100.0, device: str = "cpu"):
        self.f0_min = f0_min
        self.f0_max = f0_max
        self.device = device

    def compute(self, audio: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def compute_batch(self, audios: list[np.ndarray]) -> list[np.ndarray]:
        """Many slices at once; the default loops, GPU models batch."""
        return [self.compute(a) for a in audios]

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        return self.compute(audio)
