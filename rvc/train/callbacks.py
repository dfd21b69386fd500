"""Callbacks that turn a training run into what users share: the voice `.pth` and the `.index`.

`VoiceModelExport` writes the best model (by the monitored validation metric) as a voice
model the RVC WebUI and Applio load, and optionally one every N epochs; `BuildIndex` builds the
retrieval index over the store's features when fit ends. Both write atomically, on rank 0 only.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

from rvc.io.voice_model import save_voice_model
from rvc.train.module import generator_steps

log = logging.getLogger(__name__)


class VoiceModelExport(Callback):
    """Export `<out_dir>/<name>.pth` whenever `monitor` improves (and every N epochs if asked)."""

    def __init__(
        self,
        out_dir: str,
        name: str,
        monitor: str = "val/mel",
        every_n_epochs: int = 0,
        embedder_model: str | None = None,
        author: str | None = None,
        v1_layer: int | str | None = None,
    ) -> None:
        self.out_dir = Path(out_dir)
        self.name = name
        self.monitor = monitor
        self.every_n_epochs = int(every_n_epochs or 0)
        self.embedder_model = embedder_model
        self.author = author
        self.v1_layer = v1_layer  # the HuBERT layer of v1 features, recorded in the .pth
        self.best: float = math.inf
        self.last_path: Path | None = None

    @property
    def path(self) -> Path:
        return self.out_dir / f"{self.name}.pth"

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best = float(state_dict.get("best", math.inf))

    def export(self, trainer: L.Trainer, module: L.LightningModule, path: Path) -> Path:
        """Write the generator as a voice model with the FORMATS.md §1 metadata."""
        g = module.generator
        dm = trainer.datamodule
        save_voice_model(
            path,
            g,
            g.config,
            model_name=self.name,
            vocoder=g.vocoder,
            epoch=trainer.current_epoch + 1,  # epochs completed, as RVC counts
            step=generator_steps(trainer),  # batches, as RVC counts (not Lightning's 2 per batch)
            author=self.author,
            embedder_model=self.embedder_model,
            v1_layer=self.v1_layer,
            dataset_length=getattr(dm, "dataset_length", None),
            speakers_id=max(getattr(dm, "speakers", [0]) or [0]) + 1,
        )
        self.last_path = path
        return path

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is not None and math.isfinite(float(value)) and float(value) < self.best:
            self.best = float(value)
            self.export(trainer, module, self.path)
            log.info("voice model %s (%s %.4f)", self.path, self.monitor, self.best)

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        if self.every_n_epochs and epoch % self.every_n_epochs == 0 and trainer.is_global_zero:
            self.export(
                trainer,
                module,
                self.out_dir / f"{self.name}_e{epoch}_s{generator_steps(trainer)}.pth",
            )

    def on_fit_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        # a run without validation still leaves a voice model
        if trainer.is_global_zero and not self.path.exists():
            self.export(trainer, module, self.path)


class BuildIndex(Callback):
    """Build `<out_dir>/<name>.index` over the store's features when fit ends (FORMATS.md §6)."""

    def __init__(self, exp_dir: str, out_dir: str, name: str, builder: Any) -> None:
        self.exp_dir = Path(exp_dir)
        self.out_path = Path(out_dir) / f"{name}.index"
        self.builder = builder
        self.info: Any = None

    def on_fit_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        from rvc.data.store import FeatureStore
        from rvc.index.build import build_index

        self.info = build_index(FeatureStore(self.exp_dir), self.builder, self.out_path)
        log.info("index %s", self.out_path)
