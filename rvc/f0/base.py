"""The F0 estimator interface: 16 kHz mono audio in, F0 in Hz per 10 ms frame out."""

from __future__ import annotations

import numpy as np
import torch

from rvc.formats import ANALYSIS_HOP, ANALYSIS_RATE

SAMPLE_RATE = ANALYSIS_RATE
HOP = ANALYSIS_HOP  # 10 ms at 16 kHz


def n_frames(n_samples: int) -> int:
    """Frames an estimator returns for `n_samples` of 16 kHz audio (RVC's `len // hop`)."""
    return n_samples // HOP


class F0Estimator:
    """Base class. Subclasses implement `compute`; batched models also override `compute_batch`,
    models with weights `load`, methods RVC post-processes at conversion `for_conversion`.

    Output: float32 F0 in Hz, shape [n_frames(len(audio))], 0.0 on unvoiced frames.
    Lifecycle (what `rvc.registry.build` does): construct with `device=` (no disk, no
    network), `load()` (weights now: a missing file fails here), `to(device)`; then
    `cast(dtype)` for `device.inference_precision` (the networks' weights cast once).
    """

    name = "base"
    dtype: torch.dtype | None = None  # the networks' inference dtype; None: fp32

    def __init__(self, f0_min: float = 50.0, f0_max: float = 1100.0, device: str = "cpu"):
        self.f0_min = f0_min
        self.f0_max = f0_max
        self.device = device

    def load(self) -> F0Estimator:
        """Load weights now (estimators without weights have nothing to do)."""
        return self

    def to(self, device: str) -> F0Estimator:
        """Run on `device` from now on; networks already loaded move with it."""
        self.device = str(device)
        for net in self._modules():
            net.to(device)
        return self

    def _modules(self) -> list:
        """The torch modules the estimator holds (RMVPE's net and mel, CREPE's, FCPE's)."""
        return [v for v in vars(self).values() if hasattr(v, "parameters") and hasattr(v, "to")]

    def runs_network(self) -> bool:
        """Whether it holds a network (RMVPE, FCPE, CREPE; not pm, harvest): conversion pads
        a network's input to fixed shapes, never a path search's."""
        return bool(self._modules())

    def snug_length(self, n_samples: int) -> int:
        """The shortest input of at least `n_samples` that costs no padding inside the
        estimator (live conversion sizes its F0 span with it); most need none."""
        return n_samples

    def networks(self) -> list[torch.nn.Module]:
        """The loaded networks `cast` prepares (front ends such as RMVPE's mel stay fp32)."""
        return []

    def cast(self, dtype: torch.dtype | None) -> F0Estimator:
        """Run the networks in `dtype` from now on (None: fp32): weights cast once, batch norms
        folded (`rvc.models.inference.for_inference`); networks loaded later follow it."""
        self.dtype = dtype
        for net in self.networks():
            self._prepare(net)
        return self

    def _prepare(self, net: torch.nn.Module) -> torch.nn.Module:
        """`net` made ready once for `self.dtype`, taking fp32 inputs and giving fp32 outputs."""
        from rvc.models.inference import for_inference, fp32_boundary

        return fp32_boundary(for_inference(net, self.dtype, self.device))

    def compute(self, audio: np.ndarray) -> np.ndarray:
        """The F0 track extraction stores (the training targets)."""
        raise NotImplementedError

    def compute_batch(self, audios: list[np.ndarray]) -> list[np.ndarray]:
        """Many slices at once; the default loops, GPU models batch."""
        return [self.compute(a) for a in audios]

    def for_conversion(self, audio: np.ndarray, filter_radius: int = 3) -> np.ndarray:
        """The track conversion uses: `compute` plus the method's own conversion-only
        post-processing (RVC median-filters harvest's F0 there, never at extraction).
        `filter_radius` is RVC's option of that name; most methods ignore it."""
        return self.compute(audio)

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        return self.compute(audio)
