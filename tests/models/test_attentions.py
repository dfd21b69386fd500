"""Relative-position attention against a direct (per-offset) reference."""

from __future__ import annotations

import pytest
import torch

from rvc.models.attentions import (
    Encoder,
    MultiHeadAttention,
    _absolute_to_relative,
    _relative_to_absolute,
)


def _offsets(t: int, window: int):
    i = torch.arange(t).unsqueeze(1)
    j = torch.arange(t).unsqueeze(0)
    rel = j - i + window  # index into the 2w+1 offsets
    return rel, (rel >= 0) & (rel <= 2 * window)


@pytest.mark.parametrize(("t", "window"), [(1, 10), (5, 10), (11, 10), (30, 10), (9, 2)])
def test_skews_match_definition(t, window):
    torch.manual_seed(t)
    rel_logits = torch.randn(2, 3, t, 2 * window + 1)
    rel, inside = _offsets(t, window)
    expected = torch.where(
        inside, rel_logits[..., torch.arange(t).unsqueeze(1), rel.clamp(0, 2 * window)], 0.0
    )
    torch.testing.assert_close(_relative_to_absolute(rel_logits, window), expected)

    absolute = torch.randn(2, 3, t, t)
    got = _absolute_to_relative(absolute, window)  # [.., T, 2w+1]
    want = torch.zeros_like(got)
    for r in range(2 * window + 1):
        for i in range(t):
            j = i + r - window
            if 0 <= j < t:
                want[..., i, r] = absolute[..., i, j]
    torch.testing.assert_close(got, want)


def reference_attention(
    mha: MultiHeadAttention, x: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """Relative attention written out directly in float64."""
    mha = mha.double()
    x = x.double()
    b, c, t = x.shape
    h, d, w = mha.n_heads, mha.k_channels, mha.window_size
    q = mha.conv_q(x).view(b, h, d, t).transpose(2, 3) / d**0.5
    k = mha.conv_k(x).view(b, h, d, t).transpose(2, 3)
    v = mha.conv_v(x).view(b, h, d, t).transpose(2, 3)
    rel, inside = _offsets(t, w)
    ek = mha.emb_rel_k[0][rel.clamp(0, 2 * w)] * inside.unsqueeze(-1)  # [T, T, d]
    ev = mha.emb_rel_v[0][rel.clamp(0, 2 * w)] * inside.unsqueeze(-1)
    scores = q @ k.transpose(-1, -2) + torch.einsum("bhid,ijd->bhij", q, ek)
    scores = scores.masked_fill(~mask, -1e4)
    p = torch.softmax(scores, -1)
    out = p @ v + torch.einsum("bhij,ijd->bhid", p, ev)
    return mha.conv_o(out.transpose(2, 3).reshape(b, c, t))


@pytest.mark.parametrize("t", [3, 17, 40])
def test_attention_matches_reference(t):
    torch.manual_seed(t)
    mha = MultiHeadAttention(16, 16, n_heads=2, window_size=10)
    x = torch.randn(2, 16, t)
    valid = torch.ones(2, 1, t, dtype=torch.bool)
    valid[1, :, t - t // 3 :] = False
    mask = valid.unsqueeze(2) & valid.unsqueeze(-1)
    got = mha(x, mask)
    want = reference_attention(mha, x, mask).float()
    torch.testing.assert_close(got.double(), want.double(), rtol=1e-4, atol=1e-5)


def test_encoder_ignores_padding():
    torch.manual_seed(0)
    enc = Encoder(16, 32, n_heads=2, n_layers=2, kernel_size=3)
    x = torch.randn(1, 16, 20)
    mask = torch.ones(1, 1, 20)
    mask[..., 14:] = 0
    a = enc(x, mask)
    x2 = x.clone()
    x2[..., 14:] = torch.randn(1, 16, 6) * 10  # garbage in the padding
    b = enc(x2, mask)
    torch.testing.assert_close(a, b)
    assert a[..., 14:].abs().max() == 0
