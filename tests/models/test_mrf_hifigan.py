"""MRF HiFi-GAN vocoder: shapes at every RVC rate, gradients, weight-norm folding, Applio layout."""

from __future__ import annotations

import math

import pytest
import torch

from rvc.models.vocoders import vocoder_class
from rvc.models.vocoders.mrf_hifigan import MRFHiFiGAN

# FORMATS.md §4: upsample rates / kernels per sample rate
RATES = {
    32000: ([10, 8, 2, 2], [20, 16, 4, 4]),
    40000: ([10, 10, 2, 2], [16, 16, 4, 4]),
    48000: ([12, 10, 2, 2], [24, 20, 4, 4]),
}
KERNELS, DILATIONS = [3, 7, 11], [[1, 3, 5]] * 3


def tiny(sr: int, gin: int = 8) -> MRFHiFiGAN:
    """Real upsampling layout of `sr`, tiny channel counts."""
    ups, ks = RATES[sr]
    return MRFHiFiGAN(6, [3, 5], [[1, 3], [1, 2]], ups, 32, ks, gin, sr)


def inputs(b: int, t: int, c: int = 6, gin: int = 8):
    x = torch.randn(b, c, t)
    f0 = torch.rand(b, t) * 300 + 80
    f0[:, : t // 3] = 0  # an unvoiced stretch
    return x, f0, torch.randn(b, gin, 1)


@pytest.mark.parametrize("sr", sorted(RATES))
def test_output_length_finite_and_gradients(sr: int) -> None:
    torch.manual_seed(sr)
    model = tiny(sr)
    t = int(torch.randint(3, 9, ()).item())
    x, f0, g = inputs(2, t)
    x.requires_grad_(True)
    y = model(x, f0, g)
    assert y.shape == (2, 1, t * math.prod(RATES[sr][0]))
    assert torch.isfinite(y).all() and y.abs().max() <= 1
    y.square().mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name in ("m_source.l_linear.weight", "cond.weight", "noise_convs.0.weight"):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_remove_weight_norm_keeps_output() -> None:
    model = tiny(40000).eval()
    # non-trivial magnitudes, so folding g·v/|v| is actually exercised
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("original0"):
                p.mul_(torch.rand_like(p) + 0.5)
    x, f0, g = inputs(1, 5)
    with torch.no_grad():
        torch.manual_seed(1)
        before = model(x, f0, g)
        model.remove_weight_norm()
        torch.manual_seed(1)
        after = model(x, f0, g)
    assert not any("parametrizations" in k for k in model.state_dict())
    assert torch.allclose(before, after, atol=1e-4)


def test_noise_and_source_depend_on_seed_and_f0() -> None:
    model = tiny(32000).eval()
    x, f0, g = inputs(1, 4)
    with torch.no_grad():
        torch.manual_seed(0)
        a = model(x, f0, g)
        torch.manual_seed(0)
        b = model(x, f0, g)
        torch.manual_seed(0)
        c = model(x, f0 * 1.5, g)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_odd_upsample_rate_and_no_speaker() -> None:
    # Applio's odd-rate rule (padding u//2 + 1, output_padding 1) assumes kernel 2u
    model = MRFHiFiGAN(4, [3], [[1]], [3, 2], 16, [6, 4], 0, 16000)
    x, f0, _ = inputs(1, 6, c=4)
    assert model(x, f0, None).shape == (1, 1, 36)
    assert not any(k.startswith("cond.") for k in model.state_dict())


def wn_conv(prefix: str, shape: tuple[int, ...], bias: bool = True) -> dict[str, tuple]:
    """Keys of a weight-normed conv as Applio saves them (parametrizations API)."""
    keys = {
        f"{prefix}.parametrizations.weight.original0": (shape[0],) + (1,) * (len(shape) - 1),
        f"{prefix}.parametrizations.weight.original1": shape,
    }
    if bias:
        keys[f"{prefix}.bias"] = (shape[0],)
    return keys


def applio_mrf_layout_40k() -> dict[str, tuple]:
    """Applio's HiFiGANMRFGenerator at 40 kHz (FORMATS.md §3), written out by hand."""
    layout = {"m_source.l_linear.weight": (1, 9), "m_source.l_linear.bias": (1,)}
    layout |= wn_conv("conv_pre", (512, 192, 7))
    # ConvTranspose1d weights are [C_in, C_out, k]; weight norm runs over dim 0
    chans = [512, 256, 128, 64, 32]
    for i, k in enumerate([16, 16, 4, 4]):
        layout[f"upsamples.{i}.parametrizations.weight.original0"] = (chans[i], 1, 1)
        layout[f"upsamples.{i}.parametrizations.weight.original1"] = (chans[i], chans[i + 1], k)
        layout[f"upsamples.{i}.bias"] = (chans[i + 1],)
    # the source is strided down by the remaining upsampling (40, 4, 2, 1) with 2·stride taps
    for i, k in enumerate([80, 8, 4, 1]):
        layout[f"noise_convs.{i}.weight"] = (chans[i + 1], 1, k)
        layout[f"noise_convs.{i}.bias"] = (chans[i + 1],)
    for i in range(4):
        c = chans[i + 1]
        for m, k in enumerate([3, 7, 11]):
            for layer in range(3):
                for conv in ("conv1", "conv2"):
                    layout |= wn_conv(f"mrfs.{i}.{m}.layers.{layer}.{conv}", (c, c, k))
    layout |= wn_conv("conv_post", (1, 32, 7))
    layout |= {"cond.weight": (512, 256, 1), "cond.bias": (512,)}
    return layout


def test_state_dict_matches_applio_layout_and_size() -> None:
    model = vocoder_class("MRF HiFi-GAN")(
        192, KERNELS, DILATIONS, *RATES[40000][:1], 512, RATES[40000][1], 256, 40000
    )
    assert isinstance(model, MRFHiFiGAN)
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert got == applio_mrf_layout_40k()
    n_params = sum(p.numel() for p in model.parameters())
    assert abs(n_params - 14.49e6) < 0.02e6  # Applio's MRF `dec` at 40k: 14,491,404


def test_unknown_argument_is_an_error() -> None:
    with pytest.raises(TypeError, match="resblock"):
        MRFHiFiGAN(4, [3], [[1]], [2], 8, [4], 0, 16000, resblock="1")


def test_checkpointing_gives_the_same_gradients() -> None:
    torch.manual_seed(0)
    plain = MRFHiFiGAN(4, [3], [[1, 2]], [2, 3], 16, [4, 6], 0, 16000).train()
    ckpt = MRFHiFiGAN(4, [3], [[1, 2]], [2, 3], 16, [4, 6], 0, 16000, checkpointing=True).train()
    ckpt.load_state_dict(plain.state_dict())
    x, f0, _ = inputs(1, 5, c=4)
    grads = []
    for model in (plain, ckpt):
        torch.manual_seed(3)
        model(x, f0).square().mean().backward()
        grads.append(model.conv_pre.parametrizations.weight.original1.grad)
    assert torch.allclose(grads[0], grads[1], atol=1e-6)
