"""Resolution (STFT-magnitude) discriminator, as in UnivNet and Applio's "v3" discriminator.

Names match Applio's `DiscriminatorR` (`convs.0..4`, `conv_post`), i.e. the
`discriminators.{6,7,8}.*` entries of its v3 MultiPeriodDiscriminator.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm, weight_norm

from rvc.models.commons import conv_stack, scaled


class DiscriminatorR(nn.Module):
    """2-D conv stack over a linear STFT magnitude at one (n_fft, hop, win) resolution."""

    def __init__(
        self, resolution: tuple[int, int, int], use_spectral_norm: bool = False, width: float = 1.0
    ) -> None:
        super().__init__()
        n_fft, hop, win = (int(v) for v in resolution)
        if not 0 < win <= n_fft or hop <= 0:
            raise ValueError(f"bad STFT resolution (n_fft, hop, win) = {tuple(resolution)}")
        self.resolution = (n_fft, hop, win)
        norm = spectral_norm if use_spectral_norm else weight_norm
        # stride 2 along time only; frequency keeps its resolution
        c = scaled(32, width)
        self.convs = nn.ModuleList(
            [
                norm(nn.Conv2d(1, c, (3, 9), padding=(1, 4))),
                norm(nn.Conv2d(c, c, (3, 9), stride=(1, 2), padding=(1, 4))),
                norm(nn.Conv2d(c, c, (3, 9), stride=(1, 2), padding=(1, 4))),
                norm(nn.Conv2d(c, c, (3, 9), stride=(1, 2), padding=(1, 4))),
                norm(nn.Conv2d(c, c, (3, 3), padding=(1, 1))),
            ]
        )
        self.conv_post = norm(nn.Conv2d(c, 1, (3, 3), padding=(1, 1)))
        # rectangular window, as Applio; derived, so kept out of the state dict
        self.register_buffer("window", torch.ones(win), persistent=False)

    def spectrogram(self, y: torch.Tensor) -> torch.Tensor:
        """y [B, 1, T] -> STFT magnitude [B, n_fft // 2 + 1, frames]."""
        n_fft, hop, win = self.resolution
        pad = (n_fft - hop) // 2
        # fp32 STFT: half-precision FFTs are slow or unsupported; the convs follow autocast
        y = F.pad(y.float(), (pad, pad), mode="reflect").squeeze(1)  # [B, T + 2·pad]
        spec = torch.stft(
            y,
            n_fft=n_fft,
            hop_length=hop,
            win_length=win,
            window=self.window.float(),
            center=False,
            return_complex=True,
        )
        return torch.linalg.vector_norm(torch.view_as_real(spec), dim=-1)

    def forward(self, y: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """y [B, 1, T] -> (logits [B, F·frames'], feature maps)."""
        x = self.spectrogram(y).unsqueeze(1)  # [B, 1, F, frames]
        return conv_stack(self.convs, self.conv_post, x)
