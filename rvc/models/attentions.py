"""The VITS/RVC transformer encoder: windowed relative-position self-attention and a conv FFN.

Same parameters and math as RVC's `attentions.Encoder` (window 10, relative embeddings shared
by all heads, masked scores filled with -1e4). The relative terms are computed only for the
2·window + 1 offsets that have embeddings and moved between relative and absolute positions
with pad-and-reshape "skews", so no [T, 2T] relative tensors are built.
"""

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import nn
from torch.nn import functional as F


class LayerNorm(nn.Module):
    """Layer norm over the channel axis of [B, C, T] (parameters `gamma`, `beta`)."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C, T] -> [B, C, T]."""
        x = F.layer_norm(x.transpose(1, -1), self.gamma.shape, self.gamma, self.beta, self.eps)
        return x.transpose(1, -1)


def _relative_to_absolute(rel: torch.Tensor, window: int) -> torch.Tensor:
    """[B, H, T, 2w+1] logits per offset -> [B, H, T, T] with out[i, j] = rel[i, j - i + w]."""
    b, h, t, width = rel.shape
    # pad each row with T zeros, then read rows with a stride one shorter: row i shifts by i
    flat = F.pad(rel, (0, t)).reshape(b, h, t * (width + t))
    skewed = flat[..., : t * (width + t - 1)].reshape(b, h, t, width + t - 1)
    return skewed[..., window : window + t]


def _absolute_to_relative(abs_: torch.Tensor, window: int) -> torch.Tensor:
    """[B, H, T, T] -> [B, H, T, 2w+1] with out[i, r] = abs_[i, i + r - w] (0 outside)."""
    b, h, t, _ = abs_.shape
    width = t + 2 * window + 1
    flat = F.pad(abs_, (window, window + 1)).reshape(b, h, t * width)
    # reading rows with a stride one longer shifts row i left by i
    skewed = F.pad(flat, (0, t)).reshape(b, h, t, width + 1)
    return skewed[..., : 2 * window + 1]


class MultiHeadAttention(nn.Module):
    """Self-attention with windowed relative position keys and values (heads share them)."""

    def __init__(
        self,
        channels: int,
        out_channels: int,
        n_heads: int,
        p_dropout: float = 0.0,
        window_size: int = 10,
    ) -> None:
        super().__init__()
        if channels % n_heads:
            raise ValueError(f"channels {channels} not divisible by n_heads {n_heads}")
        self.n_heads = n_heads
        self.k_channels = channels // n_heads
        self.window_size = window_size
        self.conv_q = nn.Conv1d(channels, channels, 1)
        self.conv_k = nn.Conv1d(channels, channels, 1)
        self.conv_v = nn.Conv1d(channels, channels, 1)
        self.conv_o = nn.Conv1d(channels, out_channels, 1)
        self.drop = nn.Dropout(p_dropout)
        rel_std = self.k_channels**-0.5
        shape = (1, 2 * window_size + 1, self.k_channels)
        self.emb_rel_k = nn.Parameter(torch.randn(shape) * rel_std)
        self.emb_rel_v = nn.Parameter(torch.randn(shape) * rel_std)
        for conv in (self.conv_q, self.conv_k, self.conv_v, self.conv_o):
            nn.init.xavier_uniform_(conv.weight)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x [B, C, T], attn_mask [B, 1, T, T] (bool, True = attend) -> [B, C_out, T]."""
        heads, d = self.n_heads, self.k_channels
        # channels are heads × head width, head-major (as RVC's view(b, h, d, t))
        q = rearrange(self.conv_q(x), "b (h d) t -> b h t d", h=heads)
        k = rearrange(self.conv_k(x), "b (h d) t -> b h d t", h=heads)
        v = rearrange(self.conv_v(x), "b (h d) t -> b h t d", h=heads)
        q = q / math.sqrt(d)

        scores = torch.matmul(q, k)  # [B, H, T, T]
        rel_logits = torch.matmul(q, self.emb_rel_k[0].transpose(0, 1))  # [B, H, T, 2w+1]
        scores = scores + _relative_to_absolute(rel_logits, self.window_size)
        if attn_mask is not None:
            scores = scores.masked_fill(~attn_mask, -1e4)
        p_attn = self.drop(torch.softmax(scores, dim=-1))

        out = torch.matmul(p_attn, v)  # [B, H, T, d]
        rel_weights = _absolute_to_relative(p_attn, self.window_size)  # [B, H, T, 2w+1]
        out = out + torch.matmul(rel_weights, self.emb_rel_v[0])
        return self.conv_o(rearrange(out, "b h t d -> b (h d) t"))


class FFN(nn.Module):
    """Two masked 'same' convolutions with a ReLU between them."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        filter_channels: int,
        kernel_size: int,
        p_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        pad = (kernel_size - 1) // 2
        self.conv_1 = nn.Conv1d(in_channels, filter_channels, kernel_size, padding=pad)
        self.conv_2 = nn.Conv1d(filter_channels, out_channels, kernel_size, padding=pad)
        self.drop = nn.Dropout(p_dropout)

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor) -> torch.Tensor:
        """x [B, C, T], x_mask [B, 1, T] -> [B, C_out, T]."""
        x = torch.relu(self.conv_1(x * x_mask))
        x = self.conv_2(self.drop(x) * x_mask)
        return x * x_mask


class Encoder(nn.Module):
    """Post-norm transformer: n_layers × (relative attention, FFN), each with residual + norm."""

    def __init__(
        self,
        hidden_channels: int,
        filter_channels: int,
        n_heads: int,
        n_layers: int,
        kernel_size: int = 1,
        p_dropout: float = 0.0,
        window_size: int = 10,
    ) -> None:
        super().__init__()
        self.n_layers = n_layers
        self.drop = nn.Dropout(p_dropout)
        self.attn_layers = nn.ModuleList(
            MultiHeadAttention(hidden_channels, hidden_channels, n_heads, p_dropout, window_size)
            for _ in range(n_layers)
        )
        self.norm_layers_1 = nn.ModuleList(LayerNorm(hidden_channels) for _ in range(n_layers))
        self.ffn_layers = nn.ModuleList(
            FFN(hidden_channels, hidden_channels, filter_channels, kernel_size, p_dropout)
            for _ in range(n_layers)
        )
        self.norm_layers_2 = nn.ModuleList(LayerNorm(hidden_channels) for _ in range(n_layers))

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor) -> torch.Tensor:
        """x [B, C, T], x_mask [B, 1, T] -> [B, C, T]."""
        valid = x_mask.bool()
        attn_mask = valid.unsqueeze(2) & valid.unsqueeze(-1)  # [B, 1, T, T]
        x = x * x_mask
        for attn, norm1, ffn, norm2 in zip(
            self.attn_layers, self.norm_layers_1, self.ffn_layers, self.norm_layers_2, strict=True
        ):
            x = norm1(x + self.drop(attn(x, attn_mask)))
            x = norm2(x + self.drop(ffn(x, x_mask)))
        return x * x_mask
