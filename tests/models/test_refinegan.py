"""RefineGAN vocoder: shapes at every RVC rate, gradients, folding, source math, Applio layout."""

from __future__ import annotations

import math

import pytest
import torch

from rvc.models.vocoders import vocoder_class
from rvc.models.vocoders.refinegan import RefineGAN, SincDownsample, sine_phase
from tests.models.conftest import (
    DILATIONS,
    KERNELS,
    RATES,
    assert_checkpointing_keeps_gradients,
    assert_folding_keeps_output,
    assert_forward_and_gradients,
    tiny_vocoder,
    wn_keys,
)


def tiny(sr: int) -> RefineGAN:
    """64 initial channels: the smallest with a 2-channel source path (64 >> 5)."""
    return tiny_vocoder(RefineGAN, sr, channels=64)


@pytest.mark.parametrize("sr", sorted(RATES))
def test_output_length_finite_and_gradients(sr: int) -> None:
    torch.manual_seed(sr)
    model = tiny(sr)
    t = int(torch.randint(2, 7, ()).item())
    params = [
        "m_source.merge.0.weight",
        "cond.weight",
        "downsample_blocks.0.bias",
        "upsample_conv_blocks.3.blocks.1.0.weight",  # AdaIN noise scale
    ]
    assert_forward_and_gradients(model, t, math.prod(RATES[sr][0]), params)


def test_remove_weight_norm_keeps_output() -> None:
    assert_folding_keeps_output(tiny(40000), t=4)


@pytest.mark.parametrize("factor", [2, 10, 12])
def test_sinc_downsample_matches_torchaudio_resample(factor: int) -> None:
    # RefineGAN anti-aliases its source path with this exact torchaudio resampler configuration
    import torchaudio  # here, not at the top: a broken torchaudio fails this test alone

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
    layout = {"m_source.merge.0.weight": (1, 1)}
    layout |= wn_keys("pre_conv", (16, 1, 7))
    for i, c in enumerate([16, 32, 64, 128]):
        layout |= wn_keys(f"downsample_blocks.{i}", (2 * c, c, 7))
    layout |= wn_keys("mel_conv", (256, mels, 7))
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
                layout |= wn_keys(f"{p}.blocks.{m}.1.convs1.{j}", (out, out, k))
                layout |= wn_keys(f"{p}.blocks.{m}.1.convs2.{j}", (out, out, k))
    layout |= wn_keys("conv_post", (1, 32, 7), bias=False)
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
    # recomputation must replay the same AdaIN noise
    def build(**kw) -> RefineGAN:
        return RefineGAN(4, [3], [[1, 2]], [2, 3], 16, [4, 6], 0, 16000, **kw)

    assert_checkpointing_keeps_gradients(
        build, lambda m: m.mel_conv.parametrizations.weight.original1
    )
