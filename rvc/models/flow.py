"""The normalising flow between the posterior latent z and the prior space z_p.

Four mean-only residual coupling layers, each followed by a channel flip. The flips have no
parameters but keep their slots, so couplings sit at `flows.0/2/4/6` as in RVC files.
"""

from __future__ import annotations

import torch
from torch import nn

from rvc.models.encoders import WN


class Flip(nn.Module):
    """Reverse the channel order (its own inverse)."""

    def forward(self, x: torch.Tensor, *_: object, **__: object) -> torch.Tensor:
        """[B, C, T] -> [B, C, T]; the flow's mask, speaker and direction do not matter."""
        return torch.flip(x, [1])


class ResidualCouplingLayer(nn.Module):
    """Affine coupling: the second half of the channels is shifted by a WN of the first half."""

    def __init__(
        self,
        channels: int,
        hidden_channels: int,
        kernel_size: int,
        dilation_rate: int,
        n_layers: int,
        p_dropout: float = 0.0,
        gin_channels: int = 0,
        mean_only: bool = True,
    ) -> None:
        super().__init__()
        if channels % 2:
            raise ValueError(f"coupling channels must be even, got {channels}")
        self.half_channels = channels // 2
        self.mean_only = mean_only
        self.pre = nn.Conv1d(self.half_channels, hidden_channels, 1)
        self.enc = WN(
            hidden_channels, kernel_size, dilation_rate, n_layers, gin_channels, p_dropout
        )
        self.post = nn.Conv1d(hidden_channels, self.half_channels * (1 if mean_only else 2), 1)
        # zero init: every coupling starts as the identity
        nn.init.zeros_(self.post.weight)
        nn.init.zeros_(self.post.bias)

    def forward(
        self,
        x: torch.Tensor,
        x_mask: torch.Tensor,
        g: torch.Tensor | None = None,
        reverse: bool = False,
    ) -> torch.Tensor:
        """[B, C, T] -> [B, C, T]; `reverse` applies the inverse."""
        x0, x1 = torch.split(x, [self.half_channels, self.half_channels], dim=1)
        h = self.enc(self.pre(x0) * x_mask, x_mask, g=g)
        stats = self.post(h) * x_mask
        if self.mean_only:
            m = stats
            if not reverse:
                x1 = m + x1 * x_mask
            else:
                x1 = (x1 - m) * x_mask
        else:
            m, logs = torch.split(stats, [self.half_channels, self.half_channels], dim=1)
            if not reverse:
                x1 = m + x1 * torch.exp(logs) * x_mask
            else:
                x1 = (x1 - m) * torch.exp(-logs) * x_mask
        return torch.cat([x0, x1], dim=1)


class ResidualCouplingBlock(nn.Module):
    """n_flows × (coupling, flip); forward maps z -> z_p, reverse maps z_p -> z."""

    def __init__(
        self,
        channels: int,
        hidden_channels: int,
        kernel_size: int,
        dilation_rate: int,
        n_layers: int,
        n_flows: int = 4,
        gin_channels: int = 0,
    ) -> None:
        super().__init__()
        self.flows = nn.ModuleList()
        for _ in range(n_flows):
            self.flows.append(
                ResidualCouplingLayer(
                    channels,
                    hidden_channels,
                    kernel_size,
                    dilation_rate,
                    n_layers,
                    gin_channels=gin_channels,
                    mean_only=True,
                )
            )
            self.flows.append(Flip())

    def forward(
        self,
        x: torch.Tensor,
        x_mask: torch.Tensor,
        g: torch.Tensor | None = None,
        reverse: bool = False,
    ) -> torch.Tensor:
        """x [B, C, T], x_mask [B, 1, T], g [B, gin, 1] -> [B, C, T]."""
        flows = reversed(self.flows) if reverse else self.flows
        for flow in flows:
            x = flow(x, x_mask, g=g, reverse=reverse)
        return x
