"""The one GAN step: what gets gradients, which terms count, and that it learns."""

from __future__ import annotations

import pytest
import torch

from rvc.train.step import gan_step
from tests.train.conftest import batch_for, build_gan, train_cfg

VOCODERS = ["hifigan", "mrf_hifigan", "refinegan"]


def _opts(gan):
    make = lambda ps: torch.optim.AdamW(ps, lr=1e-3, betas=(0.8, 0.99), eps=1e-9)  # noqa: E731
    return make(gan.generator.parameters()), make(gan.discriminator.parameters())


@pytest.mark.parametrize("vocoder", VOCODERS)
def test_g_step_gives_d_no_gradient_and_every_term_counts(tmp_path, vocoder):
    cfg = train_cfg(tmp_path, f"vocoder={vocoder}")
    torch.manual_seed(0)
    gan = build_gan(cfg)
    batch = batch_for(cfg)
    out, real = gan.generate(batch)
    losses_g = gan.g_losses(out, real)
    for p in gan.discriminator.parameters():
        p.grad = None
    # the step's own G phase: D frozen
    from rvc.train.step import frozen

    with frozen(gan.discriminator):
        losses_g = gan.g_losses(out, real)
        losses_g["g/loss"].backward()
    assert all(p.grad is None for p in gan.discriminator.parameters())
    assert all(p.requires_grad for p in gan.discriminator.parameters())  # restored after
    g_grads = [p.grad for p in gan.generator.parameters() if p.grad is not None]
    assert g_grads and sum(g.abs().sum() for g in g_grads) > 0
    for name in ("mel", "kl", "fm", "adv"):
        assert float(losses_g[f"g/{name}_weighted"]) != 0.0, name
        assert torch.isfinite(losses_g[f"g/{name}"]), name
    weights = gan.generator_loss.weights
    total = sum(losses_g[f"g/{n}"] * weights[n] for n in weights)
    torch.testing.assert_close(losses_g["g/loss"].detach(), total)


def test_d_step_leaves_g_without_gradient(tmp_path):
    cfg = train_cfg(tmp_path)
    gan = build_gan(cfg)
    out, real = gan.generate(batch_for(cfg))
    gan.d_losses(real, out.wav)["d/loss"].backward()
    assert all(p.grad is None for p in gan.generator.parameters())
    assert any(
        p.grad is not None and p.grad.abs().sum() > 0 for p in gan.discriminator.parameters()
    )


def test_step_updates_both_and_returns_detached_finite_losses(tmp_path):
    cfg = train_cfg(tmp_path)
    torch.manual_seed(0)
    gan = build_gan(cfg)
    opt_g, opt_d = _opts(gan)
    before_g = [p.detach().clone() for p in gan.generator.parameters()]
    before_d = [p.detach().clone() for p in gan.discriminator.parameters()]
    losses = gan_step(gan, batch_for(cfg), opt_g, opt_d)
    assert {"d/loss", "g/loss", "g/mel", "g/kl_weighted"} <= set(losses)
    assert all(not v.requires_grad and torch.isfinite(v) for v in losses.values())
    assert any(
        not torch.equal(a, p) for a, p in zip(before_g, gan.generator.parameters(), strict=True)
    )
    assert any(
        not torch.equal(a, p) for a, p in zip(before_d, gan.discriminator.parameters(), strict=True)
    )


def test_accumulated_micro_batches_give_the_mean_gradient(tmp_path):
    cfg = train_cfg(tmp_path)
    batch = batch_for(cfg)
    grads = []
    for n in (1, 2):
        torch.manual_seed(0)
        gan = build_gan(cfg)
        opt_g, opt_d = _opts(gan)
        for i in range(n):
            torch.manual_seed(5)  # the same crops and noise in every micro-batch
            gan_step(gan, batch, opt_g, opt_d, accumulate=n, zero_grad=i == 0, step=False)
        grads.append([p.grad.clone() for p in gan.parameters() if p.grad is not None])
    assert len(grads[0]) == len(grads[1]) > 0
    for one, acc in zip(*grads, strict=True):
        torch.testing.assert_close(acc, one, rtol=1e-5, atol=1e-7)


def test_tiny_gan_reduces_its_mel_loss(tmp_path):
    cfg = train_cfg(tmp_path)
    torch.manual_seed(0)
    gan = build_gan(cfg)
    opt_g, opt_d = (torch.optim.AdamW(ps, lr=2e-3, betas=(0.8, 0.99)) for ps in
                    (gan.generator.parameters(), gan.discriminator.parameters()))  # fmt: skip
    batch = batch_for(cfg, b=1, frames=12)
    mels = [float(gan_step(gan, batch, opt_g, opt_d)["g/mel"]) for _ in range(25)]
    first, last = sum(mels[:5]) / 5, sum(mels[-5:]) / 5
    assert last < 0.8 * first, f"mel L1 {first:.3f} -> {last:.3f}"
