"""The RVC LightningModule: manual optimisation of the GAN step, validation on the
inference path, and the checks that keep a run honest (non-finite losses, resumable RNG)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from rvc.errors import RVCError
from rvc.models.commons import sequence_mask
from rvc.models.synthesizer import Synthesizer
from rvc.train.precision import check_loss_scaling
from rvc.train.step import GAN, Batch, StepHooks, compile_gan, gan_step
from rvc.utils.device import compile_backend

OptimizerFactory = Callable[[Any], torch.optim.Optimizer]
SchedulerFactory = Callable[[torch.optim.Optimizer], Any]


# static shapes compile one graph per (batch size, padded length): data.max_frames /
# data.frame_multiple lengths (8 by default) times the full and the last, smaller batch, more
# under data.batch_size=auto; dynamo's default of 8 graphs per module would send the rest to eager
RECOMPILE_LIMIT = 32


def generator_steps(trainer: L.Trainer) -> int:
    """Optimizer steps of G so far: the step RVC and Applio show and save (one per batch).

    Lightning's `global_step` counts every optimiser's steps, two per batch here (D and G step
    together in `gan_step`); restored from the checkpoint, so this stays exact on resume. With
    `accumulate` > 1 it counts G's updates, not micro-batches.
    """
    return trainer.global_step // max(1, len(trainer.optimizers))


class NonFiniteLossError(RVCError, RuntimeError):
    """A loss became NaN or Inf; the run stops before anything is saved from it."""


class RVCModule(L.LightningModule):
    """Trains a `Synthesizer` against a discriminator; see `rvc.train.step` for the step."""

    def __init__(
        self,
        gan: GAN,
        optimizer: OptimizerFactory,
        scheduler: SchedulerFactory | None = None,
        grad_clip: float | None = None,
        accumulate: int = 1,
        seed: int = 1234,
        val_audio_samples: int = 2,
        media_dir: str | None = None,
        compile: bool | str = False,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False  # two optimisers, D then G (STYLE.md §3)
        self.gan = gan
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.grad_clip = grad_clip
        self.accumulate = max(1, int(accumulate))
        self.seed = int(seed)
        self.val_audio_samples = int(val_audio_samples)
        self.media_dir = Path(media_dir) if media_dir else None
        self.compile_backend = compile_backend(compile)
        self._compiled = False
        # set on the device inside the step, read once per validation: no sync per step
        self.register_buffer("nonfinite", torch.zeros((), dtype=torch.bool), persistent=False)
        self._val_examples: list[dict[str, np.ndarray]] = []

    @property
    def generator(self) -> Synthesizer:
        return self.gan.generator

    def configure_model(self) -> None:
        # `device.compile`: G and D compiled in place, once (this hook runs on every fit/validate).
        # Lazy: each traces on its first training call, when Lightning has put it on its device.
        # Static shapes: the DataModule pads to multiples of data.frame_multiple. Validation's
        # `g.infer` is a method, not `__call__`, so it runs eagerly.
        if self.compile_backend is None or self._compiled:
            return
        import torch._dynamo

        cfg = torch._dynamo.config
        cfg.recompile_limit = max(cfg.recompile_limit, RECOMPILE_LIMIT)
        compile_gan(self.gan, backend=self.compile_backend, dynamic=False)
        self._compiled = True

    def on_fit_start(self) -> None:
        check_loss_scaling(self.trainer)  # fp16: GanMixedPrecision, never Lightning's own scaler

    def configure_optimizers(self):
        opt_g = self.optimizer_factory(self.gan.generator.parameters())
        opt_d = self.optimizer_factory(self.gan.discriminator.parameters())
        if self.scheduler_factory is None:
            return [opt_g, opt_d]
        # stepped by hand once per epoch (RVC's ExponentialLR); saved and restored by Lightning
        return [opt_g, opt_d], [self.scheduler_factory(opt_g), self.scheduler_factory(opt_d)]

    # ---- training ---------------------------------------------------------------------------
    def _epoch(self) -> int:
        # the loop's counter, as the DataModule's sampler reads it (`current_epoch` lags by one
        # right after a resume)
        return self.trainer.fit_loop.epoch_progress.current.processed

    def on_train_epoch_start(self) -> None:
        # RVC's per-epoch ExponentialLR, brought to this epoch here rather than at epoch end:
        # a checkpoint written by validation (before epoch end) then resumes with the right lr
        epoch = self._epoch()
        schedulers = self.lr_schedulers()
        with warnings.catch_warnings():  # after a resume no optimizer step has run yet: expected
            warnings.filterwarnings("ignore", "Detected call of `lr_scheduler.step()`")
            for sch in schedulers if isinstance(schedulers, list) else [schedulers]:
                while sch is not None and sch.last_epoch < epoch:
                    sch.step()

    def _clip(self, opt: torch.optim.Optimizer) -> None:
        if self.grad_clip:
            self.clip_gradients(
                opt, gradient_clip_val=self.grad_clip, gradient_clip_algorithm="norm"
            )

    def training_step(self, batch: Batch, batch_idx: int) -> None:
        # each step's randomness (segment starts, noise) depends only on (seed, epoch, batch),
        # so a resumed run repeats exactly what an uninterrupted one does
        torch.manual_seed(((self.seed * 1_000_003 + self._epoch()) * 1_000_003 + batch_idx) % 2**63)
        opt_g, opt_d = self.optimizers()
        k = batch_idx % self.accumulate
        last_batch = batch_idx + 1 == self.trainer.num_training_batches
        hooks = StepHooks(backward=self.manual_backward, clip=self._clip)
        losses = gan_step(
            self.gan, batch, opt_g, opt_d, hooks,
            accumulate=self.accumulate, zero_grad=k == 0,
            step=k == self.accumulate - 1 or last_batch,
        )  # fmt: skip
        bad = ~torch.isfinite(losses["g/loss"]) | ~torch.isfinite(losses["d/loss"])
        self.nonfinite |= bad
        b = batch["phone"].size(0)
        self.log_dict({f"train/{k}": v for k, v in losses.items()}, on_step=True, batch_size=b)

    def on_train_epoch_end(self) -> None:
        self._check_finite()

    def _check_finite(self) -> None:
        # one host read per epoch/validation: before any checkpoint or export can save NaNs
        if bool(self.nonfinite):
            raise NonFiniteLossError(
                f"a training loss became NaN/Inf in epoch {self.current_epoch} "
                f"(step {generator_steps(self.trainer)}); stopped. The last good checkpoint and voice model "
                "were kept. Lower optim.lr, set grad_clip, or use fp32 (device=cpu/gpu)."
            )

    # ---- validation: the inference path (no posterior encoder) on held-out slices ------------
    def on_validation_epoch_start(self) -> None:
        self._check_finite()
        self._val_examples = []

    def validation_step(self, batch: Batch, batch_idx: int) -> dict[str, torch.Tensor]:
        g = self.gan.generator
        devices = [self.device] if self.device.type == "cuda" else []
        # a fixed seed: comparable across epochs, and the training RNG stream is untouched
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.seed)
            pitch, pitchf = (batch["pitch"], batch["pitchf"]) if g.use_f0 else (None, None)
            fake, _ = g.infer(batch["phone"], batch["phone_lengths"], pitch, pitchf, batch["sid"])
        mel = self.gan.mel
        with torch.autocast(self.device.type, enabled=False):
            real_mel, fake_mel = mel(batch["wave"].float()), mel(fake.float())  # [B, M, T]
        mask = sequence_mask(batch["phone_lengths"], real_mel.size(-1)).unsqueeze(1)  # [B, 1, T]
        diff = ((real_mel - fake_mel).abs() * mask).sum((1, 2))  # [B]
        count = mask.sum((1, 2)) * real_mel.size(1)  # [B] mel bins counted
        err = diff.sum() / count.sum()
        self.log("val/mel", err, on_epoch=True, batch_size=batch["phone"].size(0), sync_dist=True)
        if len(self._val_examples) < self.val_audio_samples:
            self._keep_examples(batch, fake, real_mel, fake_mel)
        # per item, on the device: what the evaluation callback sums per speaker
        return {"mel_sum": diff.detach(), "mel_count": count.detach(), "sid": batch["sid"]}

    def _keep_examples(self, batch, fake, real_mel, fake_mel) -> None:
        hop = self.gan.generator.hop_length
        for i in range(batch["phone"].size(0)):
            if len(self._val_examples) >= self.val_audio_samples:
                return
            n = int(batch["phone_lengths"][i])
            self._val_examples.append(
                {
                    "real": batch["wave"][i, 0, : n * hop].float().cpu().numpy(),
                    "fake": fake[i, 0, : n * hop].float().cpu().numpy(),
                    "real_mel": real_mel[i, :, :n].cpu().numpy(),
                    "fake_mel": fake_mel[i, :, :n].cpu().numpy(),
                    "f0": batch["pitchf"][i, :n].float().cpu().numpy(),
                    "sid": int(batch["sid"][i]),
                }
            )

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking or not self.trainer.is_global_zero:
            return
        if self.media_dir is not None and self._val_examples:
            from rvc.train.media import log_examples

            sr = self.gan.generator.sample_rate
            folder = self.media_dir / f"epoch{self.current_epoch:04d}"
            log_examples(
                self.trainer.loggers, generator_steps(self.trainer), self._val_examples, sr, folder
            )
