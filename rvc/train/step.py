"""The one GAN training step of the codebase (STYLE.md §3), shared by the LightningModule and
`bench/train_step.py`: discriminator on the detached fake → backward → clip → step, then the
generator's losses → backward → clip → step.

The step never reads a value back to the host (no `.item()`, no Python branch on a tensor):
losses come back as detached device tensors, so logging decides when to synchronise.
Shapes are those of the batch; the DataModule pads to a few fixed lengths.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn

from rvc.errors import RVCError
from rvc.losses.gan import DiscriminatorLoss, GeneratorLoss
from rvc.models.commons import slice_segments
from rvc.models.synthesizer import Synthesizer, TrainOutput

Batch = dict[str, torch.Tensor]


class GAN(nn.Module):
    """Generator, discriminator, their losses and the spectrogram: what one step needs."""

    def __init__(
        self,
        generator: Synthesizer,
        discriminator: nn.Module,
        generator_loss: GeneratorLoss,
        mel: nn.Module,
    ) -> None:
        super().__init__()
        self.generator = generator
        self.discriminator = discriminator
        self.generator_loss = generator_loss
        self.discriminator_loss = DiscriminatorLoss()
        self.mel = mel  # rvc.audio.mel.MelSpectrogram: the linear spectrogram enc_q reads

    def generate(self, batch: Batch) -> tuple[TrainOutput, torch.Tensor]:
        """Training forward on a batch -> (generator outputs, the real segment [B, 1, S·hop])."""
        g = self.generator
        # RVC's padding gives exactly one frame per hop: spec frames == phone frames. Each item
        # over its own length, as Applio's per-clip spectrogram: its last frames reflect its own
        # audio, not the batch's zero padding
        lengths = batch["phone_lengths"] * self.mel.hop_length  # [B] valid samples
        spec = self.mel.spectrogram(batch["wave"], lengths)  # [B, F, T]
        pitch, pitchf = (batch["pitch"], batch["pitchf"]) if g.use_f0 else (None, None)
        out = g(
            batch["phone"], batch["phone_lengths"], pitch, pitchf, spec, batch["phone_lengths"],
            batch["sid"],
        )  # fmt: skip
        hop, seg = g.hop_length, g.segment_size
        real = slice_segments(batch["wave"], out.ids_slice * hop, seg * hop)
        return out, real

    def d_losses(self, real: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        """`d/loss` (with graph) and its detached parts; the fake is detached inside."""
        return self.discriminator_loss(self.discriminator, real, fake)

    def g_losses(self, out: TrainOutput, real: torch.Tensor) -> dict[str, torch.Tensor]:
        """`g/loss` (with graph) and every raw and weighted term, detached."""
        return self.generator_loss(self.discriminator, real, out.wav, kl_stats=out.kl_stats())


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """No gradients for `module`'s parameters inside (D during the G step: less work, and
    its stale gradients can never leak into the next D step)."""
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def _plain_backward(loss: torch.Tensor) -> None:
    loss.backward()


@dataclass
class StepHooks:
    """How the step talks to its runner: Lightning passes `manual_backward` and its clipping
    (they handle precision and loss scaling); the benchmark passes plain torch."""

    backward: Callable[[torch.Tensor], None] = _plain_backward
    # optimizer -> None: clip the gradients of its parameters before its step
    clip: Callable[[torch.optim.Optimizer], None] | None = None
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext


def gan_step(
    gan: GAN,
    batch: Batch,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    hooks: StepHooks | None = None,
    *,
    accumulate: int = 1,
    zero_grad: bool = True,
    step: bool = True,
) -> dict[str, torch.Tensor]:
    """One D step then one G step; returns every loss term, detached.

    With gradient accumulation the runner calls this `accumulate` times per optimizer step:
    `zero_grad` on the first micro-batch, `step` on the last; losses are divided by
    `accumulate` before backward so the step sees the mean gradient.
    """
    hooks = hooks or StepHooks()

    def update(loss: torch.Tensor, opt: torch.optim.Optimizer) -> None:
        if zero_grad:
            opt.zero_grad(set_to_none=True)
        hooks.backward(loss / accumulate)
        if step:
            if hooks.clip is not None:
                hooks.clip(opt)
            opt.step()

    with hooks.autocast():
        out, real = gan.generate(batch)
        losses_d = gan.d_losses(real, out.wav)
    update(losses_d["d/loss"], opt_d)
    with frozen(gan.discriminator), hooks.autocast():
        losses_g = gan.g_losses(out, real)
    update(losses_g["g/loss"], opt_g)
    return {k: v.detach() for k, v in {**losses_d, **losses_g}.items()}


def compile_gan(
    gan: GAN,
    backend: str = "inductor",
    mode: str | None = None,
    dynamic: bool | None = None,
    fullgraph: bool = False,
) -> GAN:
    """`torch.compile` the generator and the discriminator in place; returns `gan`.

    `nn.Module.compile` wraps each module's `__call__` (lazily: tracing happens on the first
    call, on whatever device the module is then): parameters, their names and the state dict
    stay as they are, so optimisers, `frozen`, checkpoints and the `.pth` export see the modules
    they always do. Only the training forward goes through the compiled code; methods such as
    `Synthesizer.infer` run eagerly. `mode` "default" is the same as None.
    """
    kwargs: dict = {"backend": backend, "dynamic": dynamic, "fullgraph": fullgraph}
    if mode not in (None, "default"):
        kwargs["mode"] = mode
    gan.generator.compile(**kwargs)
    gan.discriminator.compile(**kwargs)
    return gan


class StepConfigError(RVCError, ValueError):
    """A training-step option (`model.checkpointing`) with a value it cannot take."""


# `model.checkpointing=auto` turns it on below this much GPU memory (the smallest visible GPU):
# cards of 12 GB and less, where a 40k G at RVC's batch sizes runs short
AUTO_CHECKPOINTING_BELOW = 13 * 10**9  # bytes


def checkpointing(value: bool | str, accelerator: str | None) -> bool:
    """`model.checkpointing` (true, false or auto) for the run's `device.accelerator`."""
    from rvc.utils.device import torch_device_type

    if isinstance(value, bool):
        return value
    if str(value).lower() != "auto":
        raise StepConfigError(f"model.checkpointing must be true, false or auto, not {value!r}")
    if torch_device_type(accelerator) != "cuda" or not torch.cuda.is_available():
        return False  # CPU RAM is rarely what limits a run; the recompute only costs time
    total = min(
        torch.cuda.get_device_properties(i).total_memory for i in range(torch.cuda.device_count())
    )
    return total < AUTO_CHECKPOINTING_BELOW


def build_gan(cfg: DictConfig) -> GAN:
    """The GAN a composed `train` config names: the model's generator (with the vocoder's
    extra arguments) and mel, the vocoder's discriminator and generator loss.

    The generator is checked to read back through detection (rvc.io.detect) before training:
    a vocoder missing a piece fails here, not at the first `.pth` export an epoch later."""
    from rvc.io.detect import check_detectable  # lazy: the step itself needs no file formats

    generator = instantiate(cfg.model.synthesizer, **cfg.vocoder.kwargs)
    check_detectable(generator, f"vocoder {cfg.vocoder.name!r}")
    on = checkpointing(cfg.model.get("checkpointing", False), cfg.device.get("accelerator"))
    generator.set_checkpointing(on)
    return GAN(
        generator,
        instantiate(cfg.vocoder.discriminator),
        instantiate(cfg.vocoder.generator_loss),
        instantiate(cfg.model.mel),
    )
