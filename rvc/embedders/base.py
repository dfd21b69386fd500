"""The content-embedder interface: 16 kHz mono audio in, 20 ms content frames out."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

# (kernel, stride) of HuBERT's conv feature encoder: 400-sample receptive field, 320-sample hop.
# The one definition of the stack (and so of the 20 ms frame count every embedder gives).
HUBERT_CONV = ((10, 5), (3, 2), (3, 2), (3, 2), (3, 2), (2, 2), (2, 2))


def conv_frames(n_samples: int, conv: tuple[tuple[int, int], ...] = HUBERT_CONV) -> int:
    """Frames a conv stack gives for `n_samples` (HuBERT: (T − 400) // 320 + 1, 0 if shorter)."""
    n = int(n_samples)
    for kernel, stride in conv:
        if n < kernel:
            return 0
        n = (n - kernel) // stride + 1
    return n


class Embedder(nn.Module):
    """Base class. `forward` maps [B, T16k] float audio to [B, frames, dim] features.

    Frames are 20 ms (HuBERT's 320-sample stride); the data pipeline repeats them ×2 to the
    10 ms F0 rate, as RVC does. Lifecycle (what `rvc.registry.build` does): construct with
    `device=` (no disk, no network), `load()` (weights now), `.to(device)`, then `cast(dtype)` for
    `device.inference_precision`. Callers embed with
    `embed_batch` (or `embed` for one clip), which owns padding, the padding mask and trimming
    to `n_frames`.
    """

    name: str = "base"
    dim: int = 768
    version: str = "v2"  # v1: 256-dim, v2: 768-dim
    # whether v1 features come from a chosen layer (`v1_layer` option): conversion then picks
    # the `.pth`'s layer (rvc/io/v1_layer.py), extraction records the store's
    has_v1_layer: bool = False

    dtype: torch.dtype | None = None  # the inference dtype of the weights; None: fp32

    def load(self) -> Embedder:
        """Load weights now (embedders without weights have nothing to do)."""
        return self

    def cast(self, dtype: torch.dtype | None) -> Embedder:
        """Run in `dtype` from now on (None: fp32; `device.inference_precision`): the weights
        cast once (`rvc.models.inference.for_inference`), not by autocast on every call.
        `forward` casts its input after the fp32 preprocessing (normalisation)."""
        from rvc.models.inference import for_inference

        self.dtype = dtype  # embedders that load lazily apply it when they load
        if any(p.is_floating_point() for p in self.parameters()):
            for_inference(self, dtype, self._input_device())
        return self

    def n_frames(self, n_samples: int) -> int:
        """Valid output frames for `n_samples` of input (HuBERT's conv front end by default)."""
        return conv_frames(n_samples)

    def valid_lengths(self, audio: torch.Tensor, padding_mask: torch.Tensor | None) -> torch.Tensor:
        """Real samples per row of a padded [B, T] batch (mask: True = padding)."""
        b, t = audio.shape
        if padding_mask is None:
            return torch.full((b,), t, device=audio.device)
        if padding_mask.shape != audio.shape:
            raise ValueError(
                f"embedder '{self.name}': padding_mask {tuple(padding_mask.shape)} does not "
                f"match audio {tuple(audio.shape)}"
            )
        return (~padding_mask.to(device=audio.device, dtype=torch.bool)).sum(-1)

    def check_input(self, audio: torch.Tensor, padding_mask: torch.Tensor | None) -> torch.Tensor:
        """What every `forward` refuses (not [B, T], shorter than one frame, NaN/Inf); returns
        the real samples per row."""
        if audio.ndim != 2:
            raise ValueError(
                f"embedder '{self.name}': audio must be [B, T], got {tuple(audio.shape)}"
            )
        lengths = self.valid_lengths(audio, padding_mask)
        longest = int(lengths.max()) if len(lengths) else 0
        if self.n_frames(longest) == 0:
            raise ValueError(
                f"embedder '{self.name}': audio too short ({longest} samples); needs at least "
                "400 samples (25 ms, one frame) at 16 kHz"
            )
        if not torch.isfinite(audio).all():  # NaN in would be NaN features out, silently
            raise ValueError(f"embedder '{self.name}': audio contains NaN/Inf samples")
        return lengths

    def forward(
        self, audio: torch.Tensor, padding_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        raise NotImplementedError

    def _input_device(self) -> torch.device:
        for t in (*self.parameters(), *self.buffers()):
            return t.device
        return torch.device("cpu")

    @torch.inference_mode()
    def embed_batch(
        self, audios: Sequence[np.ndarray], length: int | None = None
    ) -> list[np.ndarray]:
        """Clips [T_i] → [n_frames(T_i), dim] float32 each, in one forward pass: right-padded
        with masked zeros to the longest clip (or to `length`, for a fixed shape)."""
        clips = [np.asarray(a) for a in audios]
        for i, a in enumerate(clips):
            if a.ndim != 1 or not np.issubdtype(a.dtype, np.number):
                raise ValueError(
                    f"embedder '{self.name}': clip {i} must be mono numeric audio [T], got "
                    f"shape {a.shape} dtype {a.dtype}"
                )
        if not clips:
            return []
        longest = max(len(a) for a in clips)
        t = longest if length is None else int(length)
        if t < longest:
            raise ValueError(f"embedder '{self.name}': length {t} < longest clip ({longest})")
        device = self._input_device()
        x = torch.zeros(len(clips), t, device=device)
        for i, a in enumerate(clips):
            x[i, : len(a)] = torch.from_numpy(a.astype(np.float32))
        mask = None  # True = padding; none when no row is padded
        if any(len(a) < t for a in clips):
            mask = torch.ones(len(clips), t, dtype=torch.bool, device=device)
            for i, a in enumerate(clips):
                mask[i, : len(a)] = False
        feats = self(x, padding_mask=mask).float().cpu().numpy()  # [B, frames, dim]
        return [f[: self.n_frames(len(a))] for f, a in zip(feats, clips, strict=True)]

    def embed(self, audio: np.ndarray) -> np.ndarray:
        """One clip as numpy: [T16k] → [frames, dim] float32."""
        return self.embed_batch([audio])[0]
