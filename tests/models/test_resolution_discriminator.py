"""Resolution (STFT) discriminator: logit / feature-map shapes, gradients, Applio v3 naming."""

from __future__ import annotations

import pytest
import torch

from rvc.models.resolution_discriminator import DiscriminatorR

# (n_fft, hop, win) of Applio's v3 discriminator (conf/vocoder/refinegan.yaml)
V3_RESOLUTIONS = [(1024, 120, 600), (2048, 240, 1200), (512, 50, 240)]


def expected_shapes(n_fft: int, hop: int, t: int) -> tuple[int, list[int]]:
    """(frequency bins, time widths after each conv) for a [B, 1, t] input."""
    pad = (n_fft - hop) // 2  # reflect padding, then an uncentred STFT
    frames = (t + 2 * pad - n_fft) // hop + 1
    widths = [frames]
    for _ in range(3):  # three convs with kernel 9, padding 4, time stride 2
        widths.append((widths[-1] - 1) // 2 + 1)
    widths += [widths[-1], widths[-1]]  # a 3×3 conv and conv_post keep the size
    return n_fft // 2 + 1, widths


@pytest.mark.parametrize("resolution", V3_RESOLUTIONS)
def test_logits_and_feature_maps(resolution: tuple[int, int, int]) -> None:
    torch.manual_seed(0)
    t = int(torch.randint(2400, 4000, ()).item())
    y = (torch.randn(2, 1, t) * 0.1).requires_grad_(True)
    disc = DiscriminatorR(resolution)
    logits, fmaps = disc(y)
    bins, widths = expected_shapes(resolution[0], resolution[1], t)
    assert logits.shape == (2, bins * widths[-1])
    assert [tuple(f.shape) for f in fmaps] == [
        (2, 32 if i < 5 else 1, bins, w) for i, w in enumerate(widths)
    ]
    assert torch.isfinite(logits).all()
    (logits.mean() + sum(f.mean() for f in fmaps)).backward()
    assert y.grad is not None and torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0
    for name, p in disc.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_silence_has_finite_gradients() -> None:
    # |STFT| has a kink at 0; digital silence must not produce NaNs
    y = torch.zeros(1, 1, 3000, requires_grad=True)
    logits, _ = DiscriminatorR(V3_RESOLUTIONS[2])(y)
    logits.sum().backward()
    assert torch.isfinite(y.grad).all()


def applio_v3_resolution_layout(spectral: bool) -> dict[str, tuple]:
    """Keys of Applio's MultiPeriodDiscriminator(version="v3").discriminators.{6,7,8}.*"""
    shapes = [(32, 1, 3, 9)] + [(32, 32, 3, 9)] * 3 + [(32, 32, 3, 3)]
    names = [f"convs.{i}" for i in range(5)] + ["conv_post"]
    layout: dict[str, tuple] = {}
    for name, shape in zip(names, shapes + [(1, 32, 3, 3)], strict=True):
        layout[f"{name}.bias"] = (shape[0],)
        if spectral:  # power-iteration vectors are saved too
            layout[f"{name}.parametrizations.weight.original"] = shape
            layout[f"{name}.parametrizations.weight.0._u"] = (shape[0],)
            layout[f"{name}.parametrizations.weight.0._v"] = (shape[1] * shape[2] * shape[3],)
        else:
            layout[f"{name}.parametrizations.weight.original0"] = (shape[0], 1, 1, 1)
            layout[f"{name}.parametrizations.weight.original1"] = shape
    return layout


@pytest.mark.parametrize("spectral", [False, True])
def test_state_dict_matches_applio_v3_entries(spectral: bool) -> None:
    want = applio_v3_resolution_layout(spectral)
    for resolution in V3_RESOLUTIONS:  # the layout does not depend on the resolution
        disc = DiscriminatorR(resolution, use_spectral_norm=spectral)
        assert {k: tuple(v.shape) for k, v in disc.state_dict().items()} == want


def test_bad_resolution() -> None:
    with pytest.raises(ValueError, match="resolution"):
        DiscriminatorR((512, 50, 1024))
