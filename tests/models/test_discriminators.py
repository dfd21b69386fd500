"""The multi-period discriminator: RVC layout, outputs and feature maps."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from rvc.models.discriminators import DiscriminatorP, DiscriminatorS, MultiPeriodDiscriminator
from tests.models.conftest import published_discriminator


def _rvc_names(model: torch.nn.Module) -> dict[str, tuple]:
    out = {}
    for k, v in model.state_dict().items():
        k = k.replace(".parametrizations.weight.original0", ".weight_g")
        out[k.replace(".parametrizations.weight.original1", ".weight_v")] = tuple(v.shape)
    return out


def expected_layout(periods: tuple[int, ...]) -> dict[str, tuple]:
    """docs/formats.md §3: discriminators.0 = scale D, then one period D per period."""
    lay: dict[str, tuple] = {}

    def conv(name, out, inp, kernel):
        # weight norm over dim 0: one magnitude per output channel, other dims kept as 1
        lay[f"{name}.weight_g"] = (out,) + (1,) * (1 + len(kernel))
        lay[f"{name}.weight_v"] = (out, inp, *kernel)
        lay[f"{name}.bias"] = (out,)

    s = [(1, 16, 15, 1), (16, 64, 41, 4), (64, 256, 41, 16), (256, 1024, 41, 64),
         (1024, 1024, 41, 256), (1024, 1024, 5, 1)]  # fmt: skip
    for i, (inp, out, k, groups) in enumerate(s):
        conv(f"discriminators.0.convs.{i}", out, inp // groups, (k,))
    conv("discriminators.0.conv_post", 1, 1024, (3,))
    chans = [1, 32, 128, 512, 1024, 1024]
    for d in range(1, len(periods) + 1):
        for i in range(5):
            conv(f"discriminators.{d}.convs.{i}", chans[i + 1], chans[i], (5, 1))
        conv(f"discriminators.{d}.conv_post", 1, 1024, (3, 1))
    return lay


@pytest.mark.parametrize(("version", "periods", "tensors"), [
    ("v1", (2, 3, 5, 7, 11, 17), 129),
    ("v2", (2, 3, 5, 7, 11, 17, 23, 37), 165),
])  # fmt: skip
def test_layout_and_size(version, periods, tensors):
    d = published_discriminator(version)  # what conf/vocoder/hifigan.yaml builds
    assert _rvc_names(d) == expected_layout(periods)
    assert len(d.state_dict()) == tensors
    assert [m.period for m in d.discriminators[1:]] == list(periods)
    if version == "v2":  # docs/formats.md §3: 71.4 M parameters
        assert 71.3e6 < sum(p.numel() for p in d.parameters()) < 71.5e6


def test_outputs_and_feature_maps_v1():
    torch.manual_seed(0)
    d = MultiPeriodDiscriminator([2, 3, 5, 7, 11, 17])
    real, fake = torch.randn(2, 1, 1999), torch.randn(2, 1, 1999)  # not a multiple of any period
    real_logits, fake_logits, real_fmaps, fake_fmaps = d(real, fake)
    assert len(real_logits) == len(fake_logits) == len(real_fmaps) == len(fake_fmaps) == 7
    assert [len(f) for f in real_fmaps] == [7] + [6] * 6
    for logits, fmap in zip(real_logits + fake_logits, real_fmaps + fake_fmaps, strict=True):
        assert logits.dim() == 2 and logits.shape[0] == 2 and torch.isfinite(logits).all()
        assert all(f.shape[0] == 2 for f in fmap)
        assert logits.shape[1] == fmap[-1][0].numel()
    # period D: time folded to [T / p, p]; the last conv keeps the period axis
    assert real_fmaps[1][0].shape[-1] == 2 and real_fmaps[6][-1].shape[-1] == 17


def test_joint_batch_equals_separate_passes():
    torch.manual_seed(0)
    d = MultiPeriodDiscriminator([2, 3, 5, 7, 11, 17, 23, 37])
    real, fake = torch.randn(1, 1, 1600), torch.randn(1, 1, 1600)
    rl, fl, rf, ff = d(real, fake)
    for i, sub in enumerate(d.discriminators):
        lr, fr = sub(real)
        lf, ffk = sub(fake)
        torch.testing.assert_close(rl[i], lr, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(fl[i], lf, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(rf[i][-1], fr[-1], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(ff[i][2], ffk[2], rtol=1e-4, atol=1e-5)


def test_gradient_flows_to_fake_input_and_weights():
    d = DiscriminatorP(3)
    x = torch.randn(1, 1, 300, requires_grad=True)
    logits, _ = d(x)
    logits.mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in d.parameters())
    s_logits, s_fmap = DiscriminatorS()(torch.randn(1, 1, 256))
    assert len(s_fmap) == 7 and s_logits.shape == (1, s_fmap[-1].shape[-1])


def test_spectral_norm_variant_builds():
    d = DiscriminatorS(use_spectral_norm=True)
    logits, _ = d(torch.randn(1, 1, 256))
    assert torch.isfinite(logits).all()


def test_layout_lists_are_checked():
    with pytest.raises(ValueError, match="periods must be a list"):
        MultiPeriodDiscriminator("v2")  # the old version strings are not a layout
    with pytest.raises(ValueError, match="triples"):
        MultiPeriodDiscriminator([2], resolutions=[[1024, 120]])
    with pytest.raises(ValueError, match="needs a scale"):
        MultiPeriodDiscriminator([], scale=False)


def test_layout_follows_the_lists():
    d = MultiPeriodDiscriminator([3, 5], resolutions=[[512, 50, 240]], scale=False, width=0.0625)
    assert [type(m).__name__ for m in d.discriminators] == [
        "DiscriminatorP", "DiscriminatorP", "DiscriminatorR"
    ]  # fmt: skip
    assert [m.period for m in d.discriminators[:2]] == [3, 5]
    real_logits, _, _, _ = d(torch.randn(1, 1, 2400), torch.randn(1, 1, 2400))
    assert len(real_logits) == 3


@pytest.mark.skipif(
    importlib.util.find_spec("rvc.models.resolution_discriminator") is None,
    reason="resolution discriminator not available",
)
def test_v3_adds_resolution_discriminators():
    d = published_discriminator("v2", "refinegan")  # Applio's v3: scale, 5 periods, 3 STFTs
    assert len(d.discriminators) == 1 + 5 + 3
    real_logits, _, real_fmaps, _ = d(torch.randn(1, 1, 4800), torch.randn(1, 1, 4800))
    assert len(real_logits) == len(real_fmaps) == 9
