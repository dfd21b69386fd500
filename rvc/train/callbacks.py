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
    """Export `<out_dir>/<name>.pth` whenever `monitor` improves (and every N epochs if asked);
    `mode` as ModelCheckpoint's: min (lower is better) or max."""

    def __init__(
        self,
        out_dir: str,
        name: str,
        monitor: str = "val/mel",
        mode: str = "min",
        every_n_epochs: int = 0,
        embedder_model: str | None = None,
        author: str | None = None,
        v1_layer: int | str | None = None,
    ) -> None:
        self.out_dir = Path(out_dir)
        self.name = name
        if mode not in ("min", "max"):
            raise ValueError(f"callbacks.voice_model.mode must be min or max, not {mode!r}")
        self.monitor = monitor
        self.mode = mode  # min: lower is better (val/mel, val/score); max: higher (val/spk_sim)
        self.every_n_epochs = int(every_n_epochs or 0)
        self.embedder_model = embedder_model
        self.author = author
        self.v1_layer = v1_layer  # the HuBERT layer of v1 features, recorded in the .pth
        self.best: float = self._worst()
        self.last_path: Path | None = None

    def _worst(self) -> float:
        return math.inf if self.mode == "min" else -math.inf

    def improves(self, value: float) -> bool:
        """Whether `value` of the monitored metric beats the best so far (by `mode`)."""
        if not math.isfinite(value):
            return False
        return value < self.best if self.mode == "min" else value > self.best

    @property
    def path(self) -> Path:
        return self.out_dir / f"{self.name}.pth"

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "monitor": self.monitor, "mode": self.mode}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        same = (state_dict.get("monitor", self.monitor), state_dict.get("mode", "min")) == (
            self.monitor, self.mode,
        )  # fmt: skip
        # a resumed run that monitors something else starts its best afresh
        self.best = float(state_dict.get("best", self._worst())) if same else self._worst()

    def export(self, trainer: L.Trainer, module: L.LightningModule, path: Path) -> Path:
        """Write the generator as a voice model with the docs/formats.md §1 metadata."""
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
        if value is not None and self.improves(float(value)):
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
    """Build `<out_dir>/<name>.index` over the store's features when fit ends (docs/formats.md §6)."""

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


class BestMetrics(Callback):
    """The best value of every validation metric of a run, as `best/<key>` (the run's
    results.json and a sweep's table): lower is better, but for the keys of `HIGHER`."""

    HIGHER = frozenset({"val/spk_sim"})  # similarity: higher is better

    def __init__(self) -> None:
        self.best: dict[str, float] = {}

    def state_dict(self) -> dict[str, Any]:
        return {"best": dict(self.best)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best = {k: float(v) for k, v in state_dict.get("best", {}).items()}

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        for key, value in trainer.callback_metrics.items():
            if not key.startswith("val/") or value.numel() != 1:
                continue
            x, old = float(value), self.best.get(key)
            if math.isfinite(x) and (old is None or (x > old if key in self.HIGHER else x < old)):
                self.best[key] = x

    def metrics(self) -> dict[str, float]:
        return {f"best/{k}": v for k, v in sorted(self.best.items())}
