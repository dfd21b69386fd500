"""RVC's encoders: the prior/content encoder `enc_p`, the posterior encoder `enc_q`, and WN.

State-dict names follow RVC (`emb_phone`, `emb_pitch`, `encoder.*`, `proj`; `pre`, `enc`,
`proj`; `in_layers`, `res_skip_layers`, `cond_layer`), so pretrained weights load as they are.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from rvc.models.attentions import Encoder
from rvc.models.commons import checkpointed, sequence_mask, wn


class WN(nn.Module):
    """WaveNet-style gated residual stack with a global condition (weight-normed convs)."""

    def __init__(
        self,
        hidden_channels: int,
        kernel_size: int,
        dilation_rate: int,
        n_layers: int,
        gin_channels: int = 0,
        p_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"WN kernel_size must be odd, got {kernel_size}")
        self.hidden_channels = hidden_channels
        self.n_layers = n_layers
        self.gin_channels = gin_channels
        self.checkpointing = False  # recompute in backward (Synthesizer.set_checkpointing)
        self.drop = nn.Dropout(p_dropout)
        if gin_channels:
            self.cond_layer = wn(nn.Conv1d(gin_channels, 2 * hidden_channels * n_layers, 1))
        self.in_layers = nn.ModuleList()
        self.res_skip_layers = nn.ModuleList()
        for i in range(n_layers):
            dilation = dilation_rate**i
            padding = (kernel_size * dilation - dilation) // 2
            conv = nn.Conv1d(
                hidden_channels,
                2 * hidden_channels,
                kernel_size,
                dilation=dilation,
                padding=padding,
            )
            self.in_layers.append(wn(conv))
            # the last layer only feeds the skip path
            res_skip = hidden_channels if i == n_layers - 1 else 2 * hidden_channels
            self.res_skip_layers.append(wn(nn.Conv1d(hidden_channels, res_skip, 1)))

    def forward(
        self, x: torch.Tensor, x_mask: torch.Tensor, g: torch.Tensor | None = None
    ) -> torch.Tensor:
        """x [B, H, T], x_mask [B, 1, T], g [B, gin, 1] -> [B, H, T]."""
        return checkpointed(self, self._forward, x, x_mask, g)

    def _forward(
        self, x: torch.Tensor, x_mask: torch.Tensor, g: torch.Tensor | None
    ) -> torch.Tensor:
        h = self.hidden_channels
        cond = self.cond_layer(g) if (g is not None and self.gin_channels) else None
        output = torch.zeros_like(x)
        for i, (in_layer, res_skip_layer) in enumerate(
            zip(self.in_layers, self.res_skip_layers, strict=True)
        ):
            x_in = in_layer(x)  # [B, 2H, T]
            if cond is not None:
                x_in = x_in + cond[:, i * 2 * h : (i + 1) * 2 * h]
            acts = self.drop(torch.tanh(x_in[:, :h]) * torch.sigmoid(x_in[:, h:]))
            res_skip = res_skip_layer(acts)
            if i < self.n_layers - 1:
                x = (x + res_skip[:, :h]) * x_mask
                output = output + res_skip[:, h:]
            else:
                output = output + res_skip
        return output * x_mask


class TextEncoder(nn.Module):
    """enc_p: content features (+ coarse pitch) -> prior mean and log-std, [B, out, T] each."""

    def __init__(
        self,
        out_channels: int,
        hidden_channels: int,
        filter_channels: int,
        n_heads: int,
        n_layers: int,
        kernel_size: int,
        p_dropout: float,
        embedding_dim: int = 768,
        f0: bool = True,
    ) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.hidden_channels = hidden_channels
        self.emb_phone = nn.Linear(embedding_dim, hidden_channels)
        self.emb_pitch = nn.Embedding(256, hidden_channels) if f0 else None
        self.encoder = Encoder(
            hidden_channels, filter_channels, n_heads, n_layers, kernel_size, p_dropout
        )
        self.proj = nn.Conv1d(hidden_channels, out_channels * 2, 1)

    def forward(
        self, phone: torch.Tensor, pitch: torch.Tensor | None, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """phone [B, T, dim], pitch [B, T] (1..255) or None, lengths [B] -> (m, logs, mask)."""
        x = self.emb_phone(phone)  # [B, T, H]
        if pitch is not None and self.emb_pitch is not None:
            x = x + self.emb_pitch(pitch)
        x = torch.nn.functional.leaky_relu(x * math.sqrt(self.hidden_channels), 0.1)
        x = x.transpose(1, 2)  # [B, H, T]
        x_mask = sequence_mask(lengths, x.size(2)).unsqueeze(1).to(x.dtype)  # [B, 1, T]
        x = self.encoder(x, x_mask)
        stats = self.proj(x) * x_mask  # [B, 2·out, T]
        m, logs = torch.split(stats, self.out_channels, dim=1)
        return m, logs, x_mask


class PosteriorEncoder(nn.Module):
    """enc_q: linear spectrogram -> sampled latent z and its mean/log-std (training only)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden_channels: int,
        kernel_size: int,
        dilation_rate: int,
        n_layers: int,
        gin_channels: int = 0,
    ) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.pre = nn.Conv1d(in_channels, hidden_channels, 1)
        self.enc = WN(hidden_channels, kernel_size, dilation_rate, n_layers, gin_channels)
        self.proj = nn.Conv1d(hidden_channels, out_channels * 2, 1)

    def forward(
        self, y: torch.Tensor, lengths: torch.Tensor, g: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """y [B, spec, T], lengths [B], g [B, gin, 1] -> (z, m, logs, mask), z/m/logs [B, out, T]."""
        y_mask = sequence_mask(lengths, y.size(2)).unsqueeze(1).to(y.dtype)  # [B, 1, T]
        x = self.enc(self.pre(y) * y_mask, y_mask, g=g)
        stats = self.proj(x) * y_mask
        m, logs = torch.split(stats, self.out_channels, dim=1)
        z = (m + torch.randn_like(m) * torch.exp(logs)) * y_mask
        return z, m, logs, y_mask
