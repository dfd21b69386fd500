"""MRF HiFi-GAN vocoder: shapes at every RVC rate, gradients, weight-norm folding, Applio layout."""

from __future__ import annotations

import math

import pytest
import torch

from rvc.models.vocoders import vocoder_class
from rvc.models.vocoders.mrf_hifigan import MRFHiFiGAN
from tests.models.conftest import (
    DILATIONS,
    KERNELS,
    RATES,
    assert_checkpointing_keeps_gradients,
    assert_folding_keeps_output,
    assert_forward_and_gradients,
    tiny_vocoder,
    vocoder_inputs,
    wn_keys,
)


@pytest.mark.parametrize("sr", sorted(RATES))
def test_output_length_finite_and_gradients(sr: int) -> None:
    torch.manual_seed(sr)
    model = tiny_vocoder(MRFHiFiGAN, sr)
    t = int(torch.randint(3, 9, ()).item())
    params = ["m_source.l_linear.weight", "cond.weight", "noise_convs.0.weight"]
    assert_forward_and_gradients(model, t, math.prod(RATES[sr][0]), params)


def test_remove_weight_norm_keeps_output() -> None:
    assert_folding_keeps_output(tiny_vocoder(MRFHiFiGAN, 40000), t=5)


def test_noise_and_source_depend_on_seed_and_f0() -> None:
    model = tiny_vocoder(MRFHiFiGAN, 32000).eval()
    x, f0, g = vocoder_inputs(1, 4)
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
    x, f0, _ = vocoder_inputs(1, 6, c=4)
    assert model(x, f0, None).shape == (1, 1, 36)
    assert not any(k.startswith("cond.") for k in model.state_dict())


def applio_mrf_layout_40k() -> dict[str, tuple]:
    """Applio's HiFiGANMRFGenerator at 40 kHz (docs/formats.md §3), written out by hand."""
    layout = {"m_source.l_linear.weight": (1, 9), "m_source.l_linear.bias": (1,)}
    layout |= wn_keys("conv_pre", (512, 192, 7))
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
                    layout |= wn_keys(f"mrfs.{i}.{m}.layers.{layer}.{conv}", (c, c, k))
    layout |= wn_keys("conv_post", (1, 32, 7))
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
    def build(**kw) -> MRFHiFiGAN:
        return MRFHiFiGAN(4, [3], [[1, 2]], [2, 3], 16, [4, 6], 0, 16000, **kw)

    assert_checkpointing_keeps_gradients(
        build, lambda m: m.conv_pre.parametrizations.weight.original1
    )
