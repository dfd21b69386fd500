"""fp16 loss scaling for the two-optimiser GAN step, as RVC/Applio scale it.

Applio (rvc/train/train.py) and the RVC WebUI keep one `GradScaler` for D and G and, per batch:
scale(loss_d).backward → unscale_(D) → step(D) → scale(loss_g).backward → unscale_(G) → step(G)
→ update(), once. Lightning's `MixedPrecision` under manual optimisation calls `update()` after
every optimizer step, twice per batch here: the scale grows twice as fast, and an overflow in
D's gradients halves it before G's backward. It also unscales inside `optimizer.step()`, after
our `clip_gradients` call, so `optim.grad_clip` acted on scaled gradients (a clip of 1 at scale
65536 kept almost nothing). `GanMixedPrecision` unscales before clipping and updates the scale
once every optimiser has stepped: once per batch, after G. bf16 and fp32 need no scaler and keep
Lightning's own plugins (`precision_args`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.core.optimizer import LightningOptimizer
from lightning.pytorch.plugins.precision import MixedPrecision
from lightning.pytorch.utilities import GradClipAlgorithmType

from rvc.utils.device import torch_device_type

# torch's fused Adam/AdamW/SGD unscale inside their own step (GradScaler.step hands them the
# scale); read from the optimiser's public `defaults`, not Lightning's private helper
_FUSED_UNSCALING = (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD)


def unscales_in_step(optimizer: torch.optim.Optimizer) -> bool:
    """Whether `optimizer` unscales fp16 gradients itself, in `step()` (fused Adam/AdamW/SGD)."""
    return isinstance(optimizer, _FUSED_UNSCALING) and bool(optimizer.defaults.get("fused"))


def _raw(optimizer: Any) -> torch.optim.Optimizer:
    # the module's `self.optimizers()` hands out LightningOptimizer wrappers; the scaler keys
    # its per-optimiser state by the wrapped optimiser
    return optimizer.optimizer if isinstance(optimizer, LightningOptimizer) else optimizer


class GanMixedPrecision(MixedPrecision):
    """`16-mixed` for manual optimisation: unscale before clipping, one scale update per batch."""

    def __init__(self, device: str = "cuda", scaler: torch.amp.GradScaler | None = None) -> None:
        super().__init__("16-mixed", device, scaler)
        self._unscaled: set[int] = set()  # ids of optimisers unscaled since their last step
        self._stepped: set[int] = set()  # ids of optimisers stepped since the last update

    def unscale(self, optimizer: Any) -> None:
        """Unscale this optimiser's gradients in place, once per step (a second call is a no-op)."""
        opt = _raw(optimizer)
        if id(opt) in self._unscaled or unscales_in_step(opt):
            return  # fused optimisers unscale inside their step
        self.scaler.unscale_(opt)
        self._unscaled.add(id(opt))

    def clip_gradients(
        self,
        optimizer: torch.optim.Optimizer,
        clip_val: int | float = 0.0,
        gradient_clip_algorithm: GradClipAlgorithmType = GradClipAlgorithmType.NORM,
    ) -> None:
        if clip_val > 0:
            self.unscale(optimizer)  # clip the true gradients, as Applio measures its grad norm
        super().clip_gradients(optimizer, clip_val, gradient_clip_algorithm)

    def optimizer_step(
        self,
        optimizer: Any,
        model: pl.LightningModule,
        closure: Callable[[], Any],
        **kwargs: Any,
    ) -> Any:
        if model.automatic_optimization:
            return super().optimizer_step(optimizer, model=model, closure=closure, **kwargs)
        opt = _raw(optimizer)
        closure()  # manual optimisation: backward already ran, this is Lightning's no-op
        self.unscale(opt)
        self._after_closure(model, opt)
        out = self.scaler.step(opt, **kwargs)  # skipped when this optimiser's grads are not finite
        self._unscaled.discard(id(opt))
        self._stepped.add(id(opt))
        # after the last optimiser of the batch (G in gan_step): every optimiser's overflow
        # counts once, and D and G's backward of one batch share one scale
        if {id(_raw(o)) for o in model.trainer.optimizers} <= self._stepped:
            self.scaler.update()
            self._stepped.clear()
        return out


def precision_args(precision: str | None, accelerator: str | None) -> dict[str, Any]:
    """Trainer keyword arguments for `device.precision`: `16-mixed` on a GPU gets
    `GanMixedPrecision`; anything else is Lightning's own (16-mixed on CPU becomes bf16 there)."""
    if str(precision) not in ("16-mixed", "16"):
        return {}
    device = torch_device_type(accelerator)
    if device == "cpu":
        return {}
    return {"precision": None, "plugins": [GanMixedPrecision(device)]}


def check_loss_scaling(trainer: pl.Trainer) -> None:
    """Refuse Lightning's own fp16 scaler for the GAN step (it updates twice per batch)."""
    plugin = trainer.precision_plugin
    if getattr(plugin, "scaler", None) is not None and not isinstance(plugin, GanMixedPrecision):
        raise RuntimeError(
            f"precision=16-mixed with Lightning's {type(plugin).__name__}: its GradScaler would "
            "update twice per batch and clip scaled gradients; build the Trainer with "
            "plugins=[rvc.train.precision.GanMixedPrecision()] and no precision= "
            "(rvc.train.run does, from device.precision)"
        )
