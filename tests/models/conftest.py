"""Helpers shared by the vocoder tests: RVC's upsampling layouts, inputs, common checks."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from rvc.models.layouts import SAMPLE_RATES, layout

# upsample rates / kernels per sample rate of the v2 layouts (the one table: models/layouts.py)
RATES = {
    sr: (list(layout("v2", sr).upsample_rates), list(layout("v2", sr).upsample_kernel_sizes))
    for sr in SAMPLE_RATES
}
KERNELS, DILATIONS = [3, 7, 11], [[1, 3, 5]] * 3


def tiny_vocoder(cls: type[nn.Module], sr: int, channels: int = 32, gin: int = 8) -> nn.Module:
    """`cls` with the real upsampling layout of `sr` and tiny channel counts."""
    ups, ks = RATES[sr]
    return cls(6, [3, 5], [[1, 3], [1, 2]], ups, channels, ks, gin, sr)


def vocoder_inputs(
    b: int, t: int, c: int = 6, gin: int = 8
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(latent [B, C, T], F0 [B, T] Hz with an unvoiced first third, speaker [B, gin, 1])."""
    x = torch.randn(b, c, t)
    f0 = torch.rand(b, t) * 300 + 80
    f0[:, : t // 3] = 0
    return x, f0, torch.randn(b, gin, 1)


def assert_forward_and_gradients(model: nn.Module, t: int, hop: int, params: list[str]) -> None:
    """A batch of 2 gives [2, 1, t·hop] in [-1, 1], and gradients reach x and each named parameter."""
    x, f0, g = vocoder_inputs(2, t)
    x.requires_grad_(True)
    y = model(x, f0, g)
    assert y.shape == (2, 1, t * hop)
    assert torch.isfinite(y).all() and y.abs().max() <= 1
    y.square().mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    named = dict(model.named_parameters())
    for name in params:
        grad = named[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def wn_keys(prefix: str, shape: tuple[int, ...], bias: bool = True) -> dict[str, tuple]:
    """State-dict keys and shapes of a weight-normed conv as Applio saves them."""
    keys = {
        f"{prefix}.parametrizations.weight.original0": (shape[0],) + (1,) * (len(shape) - 1),
        f"{prefix}.parametrizations.weight.original1": shape,
    }
    return keys | ({f"{prefix}.bias": (shape[0],)} if bias else {})


def assert_folding_keeps_output(model: nn.Module, t: int) -> None:
    """`remove_weight_norm()` drops the parametrizations and leaves the (seeded) output alone."""
    model.eval()
    with torch.no_grad():  # non-trivial magnitudes, so folding g·v/|v| is actually exercised
        for name, p in model.named_parameters():
            if name.endswith("original0"):
                p.mul_(torch.rand_like(p) + 0.5)
    x, f0, g = vocoder_inputs(1, t)
    with torch.no_grad():
        torch.manual_seed(1)  # the source (and RefineGAN's AdaIN) draw noise
        before = model(x, f0, g)
        model.remove_weight_norm()
        torch.manual_seed(1)
        after = model(x, f0, g)
    assert not any("parametrizations" in k for k in model.state_dict())
    assert torch.allclose(before, after, atol=1e-4)


def assert_checkpointing_keeps_gradients(
    build: Callable[..., nn.Module], weight: Callable[[nn.Module], torch.Tensor]
) -> None:
    """`build(checkpointing=True)` gives the gradients of `build()` at `weight(model)`."""
    torch.manual_seed(0)
    plain, ckpt = build().train(), build(checkpointing=True).train()
    ckpt.load_state_dict(plain.state_dict())
    x, f0, _ = vocoder_inputs(1, 5, c=4)
    grads = []
    for model in (plain, ckpt):
        torch.manual_seed(3)  # recomputation must replay the same noise
        model(x, f0).square().mean().backward()
        grads.append(weight(model).grad)
    assert torch.allclose(grads[0], grads[1], atol=1e-6)


def published_discriminator(version: str = "v2", option: str = "hifigan", width: float = 1.0):
    """The discriminator `conf/vocoder/<option>.yaml` builds for a feature `version`: the
    layout of the published D files (v1: periods up to 17, v2: up to 37, RefineGAN: v3)."""
    from hydra.utils import instantiate

    from tests.conftest import compose

    cfg = compose("train", ["name=x", f"vocoder={option}", f"embedder.version={version}",
                            f"model.discriminator_width={width}"])  # fmt: skip
    return instantiate(cfg.vocoder.discriminator)
