"""RefineGAN vocoder: shapes at every RVC rate, gradients, folding, source math, Applio layout."""

from __future__ import annotations

import math

import pytest
import torch
import torchaudio

from rvc.models.vocoders import vocoder_class
from rvc.models.vocoders.refinegan import RefineGAN, SincDownsample, sine_phase

# FORMATS.md §4: upsample rates / kernels per sample rate
RATES = {
    32000: ([10, 8, 2, 2], [20, 16, 4, 4]),
    40000: ([10, 10, 2, 2], [16, 16, 4, 4]),
    48000: ([12, 10, 2, 2], [24, 20, 4, 4]),
}
KERNELS, DILATIONS = [3, 7, 11], [[1, 3, 5]] * 3


def tiny(sr: int, gin: int = 8) -> RefineGAN:
    """Real upsampling layout of `sr`; 64 initial channels -> a 2-channel source path."""
    ups, ks = RATES[sr]
    return RefineGAN(6, [3, 5], [[1, 3], [1, 2]], ups, 64, ks, gin, sr)


def inputs(b: int, t: int, c: int = 6, gin: int = 8):
    x = torch.randn(b, c, t)
    f0 = torch.rand(b, t) * 300 + 80
    f0[:, : t // 3] = 0  # an unvoiced stretch
    return x, f0, torch.randn(b, gin, 1)


@pytest.mark.parametrize("sr", sorted(RATES))
def test_output_length_finite_and_gradients(sr: int) -> None:
    torch.manual_seed(sr)
    model = tiny(sr)
    t = int(torch.randint(2, 7, ()).item())
    x, f0, g = inputs(2, t)
    x.requires_grad_(True)
    y = model(x, f0, g)
    assert y.shape == (2, 1, t * math.prod(RATES[sr][0]))
    assert torch.isfinite(y).all() and y.abs().max() <= 1
    y.square().mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    params = dict(model.named_parameters())
    for name in ("m_source.merge.0.weight", "cond.weight", "downsample_blocks.0.bias"):
        assert params[name].grad is not None and params[name].grad.abs().sum() > 0, name
    assert params["upsample_conv_blocks.3.blocks.1.0.weight"].grad.abs().sum() > 0  # AdaIN


def test_remove_weight_norm_keeps_output() -> None:
    model = tiny(40000).eval()
    with torch.no_grad():  # non-trivial magnitudes, so folding g·v/|v| is exercised
        for name, p in model.named_parameters():
            if name.endswith("original0"):
                p.mul_(torch.rand_like(p) + 0.5)
    x, f0, g = inputs(1, 4)
    with torch.no_grad():
        torch.manual_seed(1)  # AdaIN and the source draw noise
        before = model(x, f0, g)
        model.remove_weight_norm()
        torch.manual_seed(1)
        after = model(x, f0, g)
    assert not any("parametrizations" in k for k in model.state_dict())
    assert torch.allclose(before, after, atol=1e-4)


@pytest.mark.parametrize("factor", [2, 10, 12])
def test_sinc_downsample_matches_torchaudio_resample(factor: int) -> None:
    # RefineGAN anti-aliases its source path with this exact torchaudio resampler configuration
    x = torch.randn(2, 3, 40 * factor)
    want = torchaudio.functional.resample(
        x,
        orig_freq=factor,
        new_freq=1,
        lowpass_filter_width=64,
        rolloff=0.9475937167399596,
        resampling_method="sinc_interp_kaiser",
        beta=14.769656459379492,
    )
    got = SincDownsample(factor)(x)
    assert got.shape == want.shape == (2, 3, 40)
    assert torch.allclose(got, want, atol=1e-5)


def test_sine_phase_matches_float64_running_sum() -> None:
    frames, hop = 600, 400  # 6 s at 40 kHz: a plain float32 cumsum drifts by ~1e-4 turns here
    rad = torch.rand(1, frames * hop, 2) * 0.03
    want = rad.double().cumsum(1) % 1
    got = sine_phase(rad, frames).double()
    err = torch.minimum((got - want).abs(), 1 - (got - want).abs())  # distance on the circle
    assert err.max() < 2e-5


def test_needs_power_of_two_channels() -> None:
    with pytest.raises(ValueError, match="upsample_initial_channel"):
        RefineGAN(6, [3], [[1]], [2, 2], 12, [4, 4], 0, 16000)
    with pytest.raises(TypeError, match="harmonic_num"):
        RefineGAN(6, [3], [[1]], [2, 2], 16, [4, 4], 0, 16000, harmonic_num=8)


def applio_refinegan_layout(mels: int = 192) -> dict[str, tuple]:
    """Applio's RefineGANGenerator (any RVC rate, four stages), written out by hand."""

    def wn(prefix: str, shape: tuple[int, ...], bias: bool = True) -> dict[str, tuple]:
        keys = {
            f"{prefix}.parametrizations.weight.original0": (shape[0], 1, 1),
            f"{prefix}.parametrizations.weight.original1": shape,
        }
        return keys | ({f"{prefix}.bias": (shape[0],)} if bias else {})

    layout = {"m_source.merge.0.weight": (1, 1)}
    layout |= wn("pre_conv", (16, 1, 7))
    for i, c in enumerate([16, 32, 64, 128]):
        layout |= wn(f"downsample_blocks.{i}", (2 * c, c, 7))
    layout |= wn("mel_conv", (256, mels, 7))
    layout |= {"cond.weight": (256, 256, 1), "cond.bias": (256,)}
    # each stage: trunk channels c plus a c/4 source skip in, c/2 out
    for i, c in enumerate([512, 256, 128, 64]):
        out = c // 2
        p = f"upsample_conv_blocks.{i}"
        layout |= {f"{p}.input_conv.weight": (out, c + c // 4, 7), f"{p}.input_conv.bias": (out,)}
        for m, k in enumerate([3, 7, 11]):
            layout[f"{p}.blocks.{m}.0.weight"] = (out,)  # AdaIN noise scale
            layout[f"{p}.blocks.{m}.2.weight"] = (out,)
            for j in range(3):
                layout |= wn(f"{p}.blocks.{m}.1.convs1.{j}", (out, out, k))
                layout |= wn(f"{p}.blocks.{m}.1.convs2.{j}", (out, out, k))
    layout |= wn("conv_post", (1, 32, 7), bias=False)
    return layout


def test_state_dict_matches_applio_layout_and_size() -> None:
    ups, ks = RATES[40000]
    model = vocoder_class("RefineGAN")(192, KERNELS, DILATIONS, ups, 512, ks, 256, 40000)
    assert isinstance(model, RefineGAN)
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert got == applio_refinegan_layout()
    n_params = sum(p.numel() for p in model.parameters())
    # Applio's RefineGAN `dec`: 13,227,218 (26.3 M with the rest of the synthesizer, no enc_q)
    assert abs(n_params - 13.23e6) < 0.02e6


def test_checkpointing_gives_the_same_gradients() -> None:
    torch.manual_seed(0)
    plain = RefineGAN(4, [3], [[1, 2]], [2, 3], 16, [4, 6], 0, 16000).train()
    ckpt = RefineGAN(4, [3], [[1, 2]], [2, 3], 16, [4, 6], 0, 16000, checkpointing=True).train()
    ckpt.load_state_dict(plain.state_dict())
    x, f0, _ = inputs(1, 5, c=4)
    grads = []
    for model in (plain, ckpt):
        torch.manual_seed(3)  # recomputation must replay the same AdaIN noise
        model(x, f0).square().mean().backward()
        grads.append(model.mel_conv.parametrizations.weight.original1.grad)
    assert torch.allclose(grads[0], grads[1], atol=1e-6)
