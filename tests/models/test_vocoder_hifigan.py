"""The HiFi-GAN decoders under the vocoder contract (docs/architecture.md)."""

from __future__ import annotations

import math

import pytest
import torch

from rvc.models.vocoders import vocoder_class
from rvc.models.vocoders.hifigan import HiFiGAN, HiFiGANNSF


def _build(cls, rates, kernels, gin=8, sr=16000, **extra):
    # the contract's positional order: (initial_channel, rb_kernels, rb_dilations, rates,
    # initial_ch, up_kernels, gin_channels, sr, **extra)
    return cls(6, [3, 5], [[1, 3], [1, 3]], rates, 32, kernels, gin, sr, **extra)


@pytest.mark.parametrize(
    ("rates", "kernels"),
    [([4, 2], [8, 4]), ([5, 2], [10, 4]), ([3, 2, 2], [6, 4, 4]), ([2, 2, 2, 2, 2], [4] * 5)],
)
def test_output_length_is_frames_times_hop(rates, kernels):
    torch.manual_seed(0)
    hop = math.prod(rates)
    x, g = torch.randn(2, 6, 13), torch.randn(2, 8, 1)
    f0 = torch.rand(2, 13) * 200 + 100
    for net, args in (
        (_build(HiFiGANNSF, rates, kernels), (f0,)),
        (_build(HiFiGAN, rates, kernels), (None,)),
    ):
        wav = net(x, *args, g=g)
        assert wav.shape == (2, 1, 13 * hop) and torch.isfinite(wav).all()
        assert wav.abs().max() <= 1.0  # tanh output


def test_registry_returns_these_classes():
    assert vocoder_class("HiFi-GAN") is HiFiGANNSF
    assert vocoder_class("HiFi-GAN", use_f0=False) is HiFiGAN


def test_nsf_needs_f0_and_uses_it():
    torch.manual_seed(0)
    net = _build(HiFiGANNSF, [4, 2], [8, 4]).eval()
    x, g = torch.randn(1, 6, 10), torch.randn(1, 8, 1)
    with pytest.raises(ValueError, match="f0"):
        net(x, None, g=g)
    torch.manual_seed(1)
    low = net(x, torch.full((1, 10), 110.0), g=g)
    torch.manual_seed(1)
    high = net(x, torch.full((1, 10), 440.0), g=g)
    assert (low - high).abs().max() > 1e-4


def test_harmonic_num_and_no_conditioning():
    net = _build(HiFiGANNSF, [4, 2], [8, 4], gin=0, harmonic_num=8)
    assert net.m_source.l_linear.in_features == 9 and net.cond is None
    assert "cond.weight" not in net.state_dict()
    wav = net(torch.randn(1, 6, 5), torch.full((1, 5), 200.0), g=torch.randn(1, 8, 1))
    assert wav.shape == (1, 1, 40)


def test_remove_weight_norm_keeps_output():
    torch.manual_seed(0)
    net = _build(HiFiGAN, [4, 2], [8, 4]).eval()
    x, g = torch.randn(1, 6, 9), torch.randn(1, 8, 1)
    before = net(x, None, g)
    net.remove_weight_norm()
    assert not any("parametrizations" in k for k in net.state_dict())
    torch.testing.assert_close(net(x, None, g), before, rtol=1e-5, atol=1e-6)


def test_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    plain = _build(HiFiGAN, [4, 2], [8, 4])
    ckpt = _build(HiFiGAN, [4, 2], [8, 4], checkpointing=True)
    ckpt.load_state_dict(plain.state_dict())
    x, g = torch.randn(1, 6, 7), torch.randn(1, 8, 1)
    for net in (plain, ckpt):
        net(x, None, g).pow(2).sum().backward()
    for (name, a), b in zip(plain.named_parameters(), ckpt.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, msg=name)
