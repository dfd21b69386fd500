"""fp16 loss scaling (`16-mixed`, the t4 preset) against Applio's: one GradScaler for D and G,
unscaled before the step, updated once per batch after G (issue 17 §5).

RVCModule and the real `gan_step` run under `GanMixedPrecision` on CPU (fp16 autocast and a
`GradScaler("cpu")`) with a toy GAN; the reference is one `torch.amp.GradScaler("cpu")` driven as
Applio's rvc/train/train.py drives it. Lightning's own scaler updates after D and after G, so its
scale grows twice as fast and halves before G's backward: these tests fail with it.
"""

from __future__ import annotations

import copy
import warnings
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from torch import nn

from rvc.train.module import RVCModule
from rvc.train.precision import GanMixedPrecision, precision_args
from tests.conftest import compose

BATCHES = 8
INIT_SCALE = 2.0**10
GROWTH_INTERVAL = 2  # short, so growth shows within a few batches


class ToyGAN(nn.Module):
    """What `gan_step` needs of a GAN: G and D as two linear maps, least-squares GAN losses."""

    def __init__(self) -> None:
        super().__init__()
        self.generator = nn.Linear(4, 4)
        self.discriminator = nn.Linear(4, 1)

    def generate(self, batch):
        return SimpleNamespace(wav=self.generator(batch["phone"])), batch["wave"]

    def d_losses(self, real, fake):
        d = self.discriminator
        loss = ((d(real).float() - 1) ** 2).mean() + (d(fake.detach()).float() ** 2).mean()
        return {"d/loss": loss}

    def g_losses(self, out, real):
        adv = ((self.discriminator(out.wav).float() - 1) ** 2).mean()
        return {"g/loss": adv + (out.wav.float() - real).abs().mean()}


def _batches() -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    return [
        {"phone": torch.randn(3, 4, generator=g), "wave": torch.randn(3, 4, generator=g)}
        for _ in range(BATCHES)
    ]


def _scaler() -> torch.amp.GradScaler:
    return torch.amp.GradScaler("cpu", init_scale=INIT_SCALE, growth_interval=GROWTH_INTERVAL)


def _sgd(params):
    return torch.optim.SGD(params, lr=0.05)


def _poison(gan: ToyGAN, bad: dict[str, set[int]], current: dict[str, int]) -> None:
    """An inf in D's or G's weight gradient at the batches named in `bad` (an fp16 overflow)."""
    for name in ("discriminator", "generator"):
        weight = getattr(gan, name).weight

        def hook(grad, name=name):
            return torch.full_like(grad, float("inf")) if current["batch"] in bad[name] else grad

        weight.register_hook(hook)


class Record(L.Callback):
    """The scale and the weights after every batch, and the batch index the hooks read."""

    def __init__(self, current: dict[str, int]) -> None:
        self.current, self.scales, self.weights = current, [], []

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        self.current["batch"] = batch_idx

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.scales.append(trainer.scaler.get_scale())
        self.weights.append(_weights(module.gan))


def _weights(gan: ToyGAN) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in gan.state_dict().items()}


def _grad_norm(params) -> float:
    return float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params])))


def _fused_adamw(params):
    # device.fast_step: the fused kernel unscales inside its step (and skips it on inf)
    return torch.optim.AdamW(params, lr=1e-3, fused=True)


def fit_ours(gan: ToyGAN, bad, grad_clip=None, plugin=None, optimizer=_sgd) -> Record:
    """RVCModule on the toy GAN for one epoch of BATCHES batches, fp16 autocast on CPU."""
    current = {"batch": -1}
    _poison(gan, bad, current)
    record = Record(current)
    module = RVCModule(gan=gan, optimizer=optimizer, grad_clip=grad_clip)
    trainer = L.Trainer(
        accelerator="cpu", devices=1, max_epochs=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
        limit_val_batches=0, callbacks=[record],
        plugins=[plugin or GanMixedPrecision("cpu", scaler=_scaler())],
    )  # fmt: skip
    trainer.fit(module, train_dataloaders=torch.utils.data.DataLoader(_batches(), batch_size=None))
    return record


def fit_applio(gan: ToyGAN, bad, grad_clip=None, optimizer=_sgd) -> dict[str, list]:
    """Applio's loop (rvc/train/train.py): one scaler, unscale_ before the step, one update()
    per batch after G; `grad_clip` clips the unscaled gradients (Applio only measures them)."""
    current = {"batch": -1}
    _poison(gan, bad, current)
    scaler = _scaler()
    opt_g, opt_d = optimizer(gan.generator.parameters()), optimizer(gan.discriminator.parameters())
    out: dict[str, list] = {"scales": [], "weights": [], "norms": []}

    def unscale_and_step(opt, module):
        scaler.unscale_(opt)
        out["norms"].append(_grad_norm(module.parameters()))
        if grad_clip:
            nn.utils.clip_grad_norm_(module.parameters(), grad_clip)
        scaler.step(opt)

    # Lightning autocasts without the cast cache (one region spans both optimiser steps, and a
    # cached fp16 copy of D would be stale after D's step); Applio's cache sums the fp16 gradients
    # of a weight used twice before casting back: a rounding difference, not the scaler's
    fp16 = dict(device_type="cpu", dtype=torch.float16, cache_enabled=False)
    for i, batch in enumerate(_batches()):
        current["batch"] = i
        with torch.autocast(**fp16):
            o, real = gan.generate(batch)
            loss_d = gan.d_losses(real, o.wav)["d/loss"]
        opt_d.zero_grad()
        scaler.scale(loss_d).backward()
        unscale_and_step(opt_d, gan.discriminator)
        with torch.autocast(**fp16):
            loss_g = gan.g_losses(o, real)["g/loss"]
        opt_g.zero_grad()
        scaler.scale(loss_g).backward()
        unscale_and_step(opt_g, gan.generator)
        scaler.update()
        out["scales"].append(scaler.get_scale())
        out["weights"].append(_weights(gan))
    return out


def _pair() -> tuple[ToyGAN, ToyGAN]:
    torch.manual_seed(0)
    gan = ToyGAN()
    return gan, copy.deepcopy(gan)


OVERFLOWS = {"discriminator": {2}, "generator": {5}}


@pytest.mark.parametrize("optimizer", [_sgd, _fused_adamw], ids=["sgd", "fused_adamw"])
def test_scale_follows_applio_one_update_per_batch_with_overflows(optimizer):
    ours, ref = _pair()
    got = fit_ours(ours, OVERFLOWS, optimizer=optimizer).scales
    want = fit_applio(ref, OVERFLOWS, optimizer=optimizer)["scales"]
    # the reference itself: it grew, and halved once at each overflow batch
    assert max(want) > INIT_SCALE
    assert want[2] == want[1] / 2 and want[5] == want[4] / 2
    assert got == want


def test_overflow_skips_only_that_optimisers_update_and_weights_match_applio():
    # the per-optimiser skip, which Lightning's own scaler also does; the trajectory test above
    # is the one its double update fails
    ours, ref = _pair()
    record = fit_ours(ours, OVERFLOWS)
    want = fit_applio(ref, OVERFLOWS)["weights"]
    w = record.weights
    d_keys = [k for k in w[0] if k.startswith("discriminator")]
    g_keys = [k for k in w[0] if k.startswith("generator")]
    for batch, skipped, kept in ((2, d_keys, g_keys), (5, g_keys, d_keys)):
        for k in skipped:  # the optimiser with inf gradients did not step
            torch.testing.assert_close(w[batch][k], w[batch - 1][k], rtol=0, atol=0)
        for k in kept:  # the other one did, on the same scale
            assert not torch.equal(w[batch][k], w[batch - 1][k]), k
    for batch in range(BATCHES):
        torch.testing.assert_close(w[batch], want[batch])


def test_clipping_sees_unscaled_gradients(monkeypatch):
    no_overflow = {"discriminator": set(), "generator": set()}
    ref_gan, ref_clip = _pair()
    norms = fit_applio(ref_gan, no_overflow)["norms"]  # Applio's grad norms: unscaled
    clip = min(norms) / 4  # clips every step, far below the scaled norms (× 1024 and more)
    seen = []
    clip_norm = nn.utils.clip_grad_norm_

    def spy(parameters, max_norm, *args, **kwargs):
        parameters = list(parameters)
        seen.append(_grad_norm(parameters))
        return clip_norm(parameters, max_norm, *args, **kwargs)

    ours, _ = _pair()
    monkeypatch.setattr(nn.utils, "clip_grad_norm_", spy)
    record = fit_ours(ours, no_overflow, grad_clip=clip)
    monkeypatch.undo()
    want = fit_applio(ref_clip, no_overflow, grad_clip=clip)
    assert len(seen) == 2 * BATCHES
    assert seen == pytest.approx(want["norms"], rel=1e-5)  # D then G, batch by batch
    for batch in range(BATCHES):
        torch.testing.assert_close(record.weights[batch], want["weights"][batch])


def test_lightnings_own_fp16_scaler_is_refused():
    from lightning.pytorch.plugins.precision import MixedPrecision

    ours, _ = _pair()
    plugin = MixedPrecision("16-mixed", "cpu", scaler=_scaler())
    with pytest.raises(RuntimeError, match="update twice per batch.*GanMixedPrecision"):
        fit_ours(ours, {"discriminator": set(), "generator": set()}, plugin=plugin)


def _precision_args(tmp_path, device: str) -> dict:
    cfg = compose("train", ["name=x", f"out_dir={tmp_path}", f"device={device}"])
    with warnings.catch_warnings():  # without CUDA, GradScaler("cuda") warns that it is disabled
        warnings.simplefilter("ignore", UserWarning)
        return precision_args(cfg.trainer.precision, cfg.trainer.accelerator)


def test_t4_preset_builds_gan_mixed_precision_and_the_others_keep_lightnings(tmp_path):
    t4 = _precision_args(tmp_path, "t4")
    assert t4["precision"] is None  # Lightning refuses precision= next to a precision plugin
    (plugin,) = t4["plugins"]
    assert isinstance(plugin, GanMixedPrecision)
    assert (plugin.precision, plugin.device) == ("16-mixed", "cuda")
    for device in ("cpu", "gpu", "bf16", "l4", "a100", "tf32"):
        assert _precision_args(tmp_path, device) == {}, device
    assert precision_args("16-mixed", "cpu") == {}  # Lightning turns it into bf16 on CPU


@pytest.mark.parametrize(
    "make,fused",
    [(lambda p: torch.optim.AdamW(p, fused=True), True), (lambda p: torch.optim.AdamW(p), False),
     (lambda p: torch.optim.Adam(p, fused=True), True), (lambda p: torch.optim.SGD(p, lr=0.1), False),
     (lambda p: torch.optim.SGD(p, lr=0.1, fused=True), True),
     (lambda p: torch.optim.RMSprop(p), False)],
)  # fmt: skip
def test_which_optimisers_unscale_in_their_step_matches_torchs_own_flag(make, fused):
    """Public `defaults["fused"]` reads what torch's GradScaler reads (its private flag)."""
    from rvc.train.precision import unscales_in_step

    opt = make([torch.nn.Parameter(torch.zeros(2))])
    assert unscales_in_step(opt) == fused == getattr(opt, "_step_supports_amp_scaling", False)
