"""Signal-processing F0 estimators (CPU only, no weights): WORLD Harvest and Praat autocorrelation."""

from __future__ import annotations

import numpy as np

from rvc.f0.base import HOP, SAMPLE_RATE, F0Estimator, n_frames
from rvc.f0.frames import check_audio, fit_frames, mask_range

FRAME_PERIOD_MS = 1000.0 * HOP / SAMPLE_RATE  # 10 ms


class HarvestEstimator(F0Estimator):
    """WORLD Harvest + StoneMask refinement (pyworld), as RVC does.

    WORLD frame i is at time 10·i ms (sample 160·i); it returns T//160 + 1 frames and we drop
    the last. At conversion only (`for_conversion`, `filter_radius` > 2) the track is
    median-filtered over `median_filter` frames first, as RVC's pipeline does; extraction stores
    the unfiltered track, as RVC's does. Slow (≈ real time on one core); `device` is ignored.
    """

    name = "harvest"

    def __init__(
        self,
        f0_min: float = 50.0,
        f0_max: float = 1100.0,
        device: str = "cpu",
        median_filter: int = 3,
    ):
        super().__init__(f0_min=f0_min, f0_max=f0_max, device=device)
        if median_filter > 1 and median_filter % 2 == 0:
            raise ValueError(f"median_filter must be odd (or 0/1 = off), got {median_filter}")
        self.median_filter = median_filter

    def _track(self, audio: np.ndarray, size: int) -> np.ndarray:
        import pyworld
        from scipy.ndimage import median_filter

        audio = check_audio(audio)
        if n_frames(len(audio)) == 0:
            return np.zeros(0, dtype=np.float32)
        x = audio.astype(np.float64)
        f0, t = pyworld.harvest(
            x, SAMPLE_RATE, f0_floor=self.f0_min, f0_ceil=self.f0_max, frame_period=FRAME_PERIOD_MS
        )
        f0 = pyworld.stonemask(x, f0, t, SAMPLE_RATE)
        if size > 1:
            # scipy.signal.medfilt's zero-padded median (RVC's), without its warning on short
            # tracks; over all WORLD frames, the last included, as RVC filters before trimming
            f0 = median_filter(f0, size=size, mode="constant", cval=0.0)
        return mask_range(fit_frames(f0, len(audio)), self.f0_min, self.f0_max)

    def compute(self, audio: np.ndarray) -> np.ndarray:
        return self._track(audio, 0)

    def for_conversion(self, audio: np.ndarray, filter_radius: int = 3) -> np.ndarray:
        return self._track(audio, self.median_filter if filter_radius > 2 else 0)


class PMEstimator(F0Estimator):
    """Praat's autocorrelation pitch (parselmouth `to_pitch_ac`, voicing threshold 0.6), as RVC's "pm".

    Praat places its frames symmetrically inside the clip and leaves out the edges (its window
    spans 3 periods of f0_min); each Praat frame is put on our grid at the nearest frame centre and
    the frames it does not cover stay unvoiced. Fast; `device` is ignored.
    """

    name = "pm"

    def __init__(
        self,
        f0_min: float = 50.0,
        f0_max: float = 1100.0,
        device: str = "cpu",
        voicing_threshold: float = 0.6,
    ):
        super().__init__(f0_min=f0_min, f0_max=f0_max, device=device)
        self.voicing_threshold = voicing_threshold

    def compute(self, audio: np.ndarray) -> np.ndarray:
        import parselmouth

        audio = check_audio(audio)
        n = n_frames(len(audio))
        out = np.zeros(n, dtype=np.float32)
        # Praat needs at least one full analysis window (3 periods of f0_min)
        if n == 0 or len(audio) < 3 * SAMPLE_RATE / self.f0_min:
            return out
        pitch = parselmouth.Sound(audio.astype(np.float64), SAMPLE_RATE).to_pitch_ac(
            time_step=HOP / SAMPLE_RATE,
            voicing_threshold=self.voicing_threshold,
            pitch_floor=self.f0_min,
            pitch_ceiling=self.f0_max,
        )
        f0 = pitch.selected_array["frequency"]  # 0 where unvoiced
        # Praat puts sample k at time (k + 0.5) / sr; our frame i is centred on sample 160·i.
        # Round half up: Praat's frame times often fall exactly half-way between our frames.
        pos = (np.asarray(pitch.xs()) * SAMPLE_RATE - 0.5) / HOP
        idx = np.floor(pos + 0.5).astype(np.int64)
        keep = (idx >= 0) & (idx < n)
        out[idx[keep]] = f0[keep]
        return mask_range(out, self.f0_min, self.f0_max)
