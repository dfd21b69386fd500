"""The fast step (`device.fast_step=true`: fused AdamW) against the plain step: the same
losses, gradients and updates, fewer than half the eager ops, no host syncs.

(Weight norm needs nothing more: D runs the real and the fake audio as one batch, so every
weight-normed weight is computed once per pass already.)"""

from __future__ import annotations

from collections import Counter

import torch
from hydra.utils import instantiate
from torch.utils._python_dispatch import TorchDispatchMode

from rvc.train.step import StepHooks, gan_step
from tests.train.conftest import batch_for, build_gan, train_cfg


class OpCounter(TorchDispatchMode):
    """Counts every aten op dispatched (what an eager step launches)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[str(func)] += 1
        return func(*args, **(kwargs or {}))


def _setup(tmp_path, fast: bool):
    cfg = train_cfg(tmp_path, f"device.fast_step={str(fast).lower()}")
    torch.manual_seed(0)
    gan = build_gan(cfg)
    opt = instantiate(cfg.optim.optimizer)
    assert opt.keywords["fused"] is fast  # the device group selects it
    return cfg, gan, opt(gan.generator.parameters()), opt(gan.discriminator.parameters())


def test_same_losses_and_weights_as_the_plain_step(tmp_path):
    results = []
    for fast in (False, True):
        cfg, gan, opt_g, opt_d = _setup(tmp_path, fast)
        batch = batch_for(cfg)
        for seed in (1, 2):  # the second step's losses see the first step's updates
            torch.manual_seed(seed)
            losses = gan_step(gan, batch, opt_g, opt_d, StepHooks())
        results.append((losses, {n: p.detach().clone() for n, p in gan.named_parameters()}))
    (l0, w0), (l1, w1) = results
    for k in l0:
        torch.testing.assert_close(l1[k], l0[k], rtol=1e-5, atol=1e-6)
    diff = torch.cat([(w1[k] - w0[k]).abs().flatten() for k in w0])
    # equal up to float order, except a few elements whose gradient is ~eps: Adam divides by
    # |g| + eps there, so rounding moves them by up to lr per step
    assert (diff > 1e-6).float().mean() < 1e-4 and diff.mean() < 1e-8
    assert diff.max() <= 2 * 2 * 1e-4
    init = _setup(tmp_path, False)[1]
    moved = sum(not torch.equal(p, w0[n]) for n, p in init.named_parameters())
    assert moved > 0.9 * len(w0)  # both steps really updated G and D


def test_fused_adamw_takes_the_same_step():
    torch.manual_seed(0)
    p0 = [torch.randn(5, 3, requires_grad=True), torch.randn(7, requires_grad=True)]
    p1 = [p.detach().clone().requires_grad_(True) for p in p0]
    kw = {"lr": 1e-2, "betas": (0.8, 0.99), "eps": 1e-9}
    o0, o1 = torch.optim.AdamW(p0, **kw), torch.optim.AdamW(p1, fused=True, **kw)
    for _ in range(3):
        g = [torch.randn_like(p) for p in p0]
        for ps, opt in ((p0, o0), (p1, o1)):
            for p, gi in zip(ps, g, strict=True):
                p.grad = gi.clone()
            opt.step()
    for a, b in zip(p0, p1, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_fast_step_runs_under_half_the_ops_and_never_syncs(tmp_path):
    counts = []
    for fast in (False, True):
        cfg, gan, opt_g, opt_d = _setup(tmp_path, fast)
        batch, hooks = batch_for(cfg), StepHooks()
        gan_step(gan, batch, opt_g, opt_d, hooks)  # optimiser state exists from here on
        counter = OpCounter()
        with counter:
            gan_step(gan, batch, opt_g, opt_d, hooks)
        counts.append(counter.ops)
    plain, fast = counts
    total_plain, total_fast = sum(plain.values()), sum(fast.values())
    assert total_fast <= 0.5 * total_plain, (total_fast, total_plain)
    # the plain AdamW reads every parameter's step count back to the host; the fast one never
    assert plain["aten._local_scalar_dense.default"] > 100
    assert fast["aten._local_scalar_dense.default"] == 0
    # the model's own work is the same: the savings are all in the optimiser
    assert fast["aten.convolution.default"] == plain["aten.convolution.default"] > 0
