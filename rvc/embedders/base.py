"""The content-embedder interface: 16 kHz mono audio in, 20 ms content frames out."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class Embedder(nn.Module):
    """Base class. `forward` maps [B, T16k] float audio to [B, frames, dim] features.

    Frames are 20 ms (HuBERT's 320-sample stride); the data pipeline repeats them ×2 to the
    10 ms F0 rate, as RVC does.
    """

    name: str = "base"
    dim: int = 768
    version: str = "v2"  # v1: 256-dim, v2: 768-dim

    def n_frames(self, n_samples: int) -> int:
        """Valid output frames for `n_samples` of input (HuBERT's conv front end by default)."""
        n = n_samples
        for kernel, stride in ((10, 5), (3, 2), (3, 2), (3, 2), (3, 2), (2, 2), (2, 2)):
            n = (n - kernel) // stride + 1
        return max(n, 0)

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

    def forward(
        self, audio: torch.Tensor, padding_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        raise NotImplementedError

    @torch.inference_mode()
    def embed(self, audio: np.ndarray) -> np.ndarray:
        """One clip as numpy: [T16k] → [frames, dim] float32."""
        device = next(self.parameters(), torch.empty(0)).device
        x = torch.as_tensor(audio, dtype=torch.float32, device=device)[None]
        return self(x)[0].float().cpu().numpy()
