"""`train.py`'s work: check the store against the config, build everything from config, fit.

The store named by `name` decides the data: its sample rate, embedder and F0 method must be
the config's, checked before any training. Outputs land in `out_dir` (the store folder for a
single run, a sub-folder per job in a multirun): `<name>.pth`, `<name>.index`,
`checkpoints/` (`last.ckpt` for `ckpt_path=last`), `media/` and the loggers' folders.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from rvc.data.store import FeatureStore, StoreLockedError
from rvc.data.writer_lock import describe
from rvc.errors import RVCError
from rvc.utils import atomic

log = logging.getLogger(__name__)


class TrainError(RVCError, RuntimeError):
    """The run cannot start or went wrong in a way the user must fix; message is for the user."""


@dataclass
class TrainResult:
    out_dir: Path
    voice_model: Path | None
    index: Path | None
    epochs: int  # epochs completed
    steps: int  # optimiser steps (G and D each)
    metrics: dict[str, float] = field(default_factory=dict)


def _describe_f0(conf: dict[str, Any]) -> str:
    name = str(conf.get("_target_", "?")).rsplit(".", 1)[-1]
    return f"{name}({conf['model']})" if conf.get("model") else name


def check_store(cfg: DictConfig) -> FeatureStore:
    """The store exists and was made with this config's sample rate, embedder and F0 method."""
    from rvc.data.datamodule import DataConfigError, open_store

    root = Path(cfg.paths.exp_dir)
    try:
        store = open_store(root, cfg.model.sample_rate)
    except DataConfigError as e:
        raise TrainError(str(e)) from e
    try:
        store.check_embedder(cfg.embedder.name, cfg.embedder.dim)
    except ValueError as e:
        raise TrainError(str(e)) from e
    _pin_v1_layer(cfg, store)
    made = store.stages.get("f0", {}).get("config")
    if not made:
        raise TrainError(f"{root}: no F0 extracted yet (run extract.py)")
    want = OmegaConf.to_container(cfg.f0, resolve=True)
    if (made.get("_target_"), made.get("model")) != (want.get("_target_"), want.get("model")):
        raise TrainError(
            f"the store {root} has F0 from {_describe_f0(made)} but the config asks for "
            f"{_describe_f0(want)}; pass the f0= used with extract.py"
        )
    return store


def _pin_v1_layer(cfg: DictConfig, store: FeatureStore) -> None:
    """v1: set `embedder.v1_layer` to the layer the store's features read (the exported `.pth`
    records it); an explicit other layer is refused: the features would not be its."""
    if cfg.embedder.get("version") != "v1" or "v1_layer" not in cfg.embedder:
        return  # v2 reads the last layer; embedders without layers (spectral) have no choice
    from rvc.io.v1_layer import parse_v1_layer, store_v1_layer

    have = store_v1_layer(store.stages["features"]["config"])
    try:
        want = parse_v1_layer(cfg.embedder.get("v1_layer"))
    except ValueError as e:
        raise TrainError(str(e)) from e
    if want is not None and want != have:
        raise TrainError(
            f"the store {store.root} holds v1 features of HuBERT layer {have}, but "
            f"embedder.v1_layer={want}; re-run extract.py with embedder.v1_layer={want}, or "
            "leave it at auto"
        )
    with open_dict(cfg):
        cfg.embedder.v1_layer = have
    log.info("v1 features: final_proj of HuBERT layer %d (the store's)", have)


def _max_epochs(cfg: DictConfig, store: FeatureStore) -> int:
    value = cfg.trainer.max_epochs
    if str(value) != "auto":
        return int(value)
    audit_path = store.root / "audit.json"
    try:
        epochs = int(json.loads(audit_path.read_text())["recommendation"]["epochs"])
    except (OSError, ValueError, KeyError) as e:
        raise TrainError(
            f"trainer.max_epochs=auto needs {audit_path} ({e}); re-run extract.py"
        ) from e
    log.info("trainer.max_epochs=auto: %d epochs (the audit's recommendation)", epochs)
    return epochs


def check_writable(out_dir: Path) -> None:
    """Fail before training when results could not be saved."""
    probe = out_dir / ".write_test"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic.write_text(probe, "ok")
        probe.unlink()
    except OSError as e:
        raise TrainError(f"the output folder {out_dir} is not writable: {e}") from e


def _set_backends(cfg: DictConfig) -> None:
    if cfg.device.get("tf32"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.set_float32_matmul_precision("high")


def build_module(cfg: DictConfig, media_dir: Path | None = None):
    """The LightningModule from config: generator, the vocoder's discriminator and loss."""
    from rvc.train.module import RVCModule
    from rvc.train.step import build_gan

    return RVCModule(
        gan=build_gan(cfg),
        optimizer=instantiate(cfg.optim.optimizer),
        scheduler=instantiate(cfg.optim.scheduler) if cfg.optim.get("scheduler") else None,
        grad_clip=cfg.optim.grad_clip,
        accumulate=cfg.optim.accumulate,
        seed=cfg.seed,
        val_audio_samples=cfg.val_audio_samples,
        media_dir=str(media_dir) if media_dir else None,
        compile=cfg.device.get("compile", False),
    )


def load_pretrained(cfg: DictConfig, module) -> None:
    """Start G and D from the `pretrained` option; any problem is a TrainError."""
    from rvc.io.pretrained import PretrainedNotAvailableError
    from rvc.io.safe_load import ModelFileError
    from rvc.utils.hub import MissingModelFileError

    try:
        source = instantiate(cfg.pretrained)
        paths = source.load_into(
            module.gan.generator,
            module.gan.discriminator,
            vocoder=cfg.vocoder.name,
            sample_rate=cfg.model.sample_rate,
            use_f0=cfg.model.use_f0,
            version=cfg.embedder.version,
        )
    except (MissingModelFileError, PretrainedNotAvailableError, ModelFileError, ValueError) as e:
        raise TrainError(f"pretrained: {e}") from e
    if paths.generator or paths.discriminator:
        log.info("pretrained G: %s, D: %s", paths.generator, paths.discriminator)


def _instantiate_all(node: DictConfig | None) -> list[Any]:
    """Every `_target_` entry of a dict-shaped group (callbacks, logger); null entries skipped."""
    if not node:
        return []
    return [instantiate(v) for v in node.values() if v is not None and "_target_" in v]


def resolve_ckpt(ckpt_path: str | None, out_dir: Path) -> str | None:
    """`last` -> `<out_dir>/checkpoints/last.ckpt` when there is one (else a fresh start)."""
    if ckpt_path in (None, "", "null"):
        return None
    if ckpt_path == "last":
        last = out_dir / "checkpoints" / "last.ckpt"
        if last.exists():
            return str(last)
        log.warning("ckpt_path=last: no %s yet, starting a new run", last)
        return None
    if not Path(ckpt_path).is_file():
        raise TrainError(f"ckpt_path: no such checkpoint {ckpt_path}")
    return str(ckpt_path)


def run(cfg: DictConfig) -> TrainResult:
    """Train a voice model on the store `cfg.name`; returns where the results are."""
    store = check_store(cfg)
    _size_speakers(cfg, store)
    out_dir = Path(cfg.out_dir)
    check_writable(out_dir)
    with one_writer(out_dir):
        return _train(cfg, store, out_dir)


def _size_speakers(cfg: DictConfig, store: FeatureStore) -> None:
    """`model.synthesizer.spk_embed_dim`: auto sized to the store (rvc/train/base_model.py)."""
    from rvc.train.base_model import size_speaker_embedding

    try:
        size_speaker_embedding(cfg, store)
    except ValueError as e:
        raise TrainError(str(e)) from e


# set in the processes of a distributed run; every rank but 0 runs under rank 0's lock
_RANK_VARS = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID")


@contextlib.contextmanager
def one_writer(out_dir: Path) -> Iterator[None]:
    """Hold `out_dir` for this run: a second train.py (or an extract.py, when `out_dir` is the
    store) on the same folder fails fast. The store's lock (`.lock`, rvc/data/writer_lock.py):
    this process's alone, so loader workers orphaned by a kill -9 do not keep it."""
    if any(os.environ.get(v, "0") not in ("", "0") for v in _RANK_VARS):
        yield
        return
    held = contextlib.ExitStack()
    try:
        held.enter_context(FeatureStore(out_dir, read=False).lock())
    except StoreLockedError as e:
        raise TrainError(
            f"{out_dir}: another run is writing this folder ({describe(e.holder)}); wait for "
            "it to finish, or set out_dir= to another folder"
        ) from e
    with held:
        yield


def _train(cfg: DictConfig, store: FeatureStore, out_dir: Path) -> TrainResult:
    import lightning as L

    from rvc.train.distributed import build_strategy, tune_batch_size
    from rvc.train.precision import precision_args

    max_epochs = _max_epochs(cfg, store)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    _set_backends(cfg)

    auto_batch = str(cfg.data.batch_size) == "auto"
    datamodule = instantiate(cfg.data, **({"batch_size": 2} if auto_batch else {}))
    module = build_module(cfg, out_dir / "media")
    ckpt = resolve_ckpt(cfg.ckpt_path, out_dir)
    if ckpt is None:  # a resumed run brings its own weights
        load_pretrained(cfg, module)
    from rvc.train.callbacks import BestMetrics

    loggers = _instantiate_all(cfg.logger)
    callbacks = [*_instantiate_all(cfg.callbacks), BestMetrics()]  # best/<key>: results.json
    if not loggers:  # logger=none: Lightning refuses a learning-rate monitor with nothing to log to
        callbacks = [c for c in callbacks if type(c).__name__ != "LearningRateMonitor"]
    # fp16 (the t4 preset): GanMixedPrecision, one loss-scale update per batch as Applio's
    trainer: L.Trainer = instantiate(
        cfg.trainer, max_epochs=max_epochs, callbacks=callbacks, logger=loggers or False,
        strategy=build_strategy(cfg.trainer.strategy, cfg.device),
        **precision_args(cfg.trainer.precision, cfg.trainer.accelerator),
    )  # fmt: skip

    def one_device() -> L.Trainer:  # auto batch under DDP: the trials on this process's device
        # the run's first GPU (device.devices=[2, 3] tunes on 2), not whichever is cuda:0
        gpu = trainer.strategy.root_device.type == "cuda"
        return instantiate(
            cfg.trainer, max_epochs=max_epochs, strategy="auto", num_nodes=1,
            devices=[trainer.device_ids[0]] if gpu else 1,
            logger=False, enable_checkpointing=False,
            **precision_args(cfg.trainer.precision, cfg.trainer.accelerator),
        )  # fmt: skip

    for lg in loggers:
        lg.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    log.info("%s", describe_start(trainer, module, max_epochs))
    if auto_batch:
        trials = int(cfg.data.get("auto_batch_trials", 6))
        tune_batch_size(trainer, module, datamodule, trials, one_device)
    try:
        _fit(trainer, module, datamodule, ckpt, out_dir)
        return _result(trainer, callbacks, loggers, out_dir, cfg.name)
    finally:  # the next job of a multirun gets its own W&B run
        for lg in loggers:
            if type(lg).__name__ == "WandbLogger":
                lg.experiment.finish()


def describe_start(trainer, module, max_epochs: int) -> str:
    """One line in place of Lightning's hardware lines and 12-line model summary."""
    from lightning.pytorch.utilities.model_summary import get_human_readable_count as count

    gan = module.gan
    n_g = sum(p.numel() for p in gan.generator.parameters())
    n_d = sum(p.numel() for p in gan.discriminator.parameters())
    where = f"{trainer.num_devices} × {trainer.strategy.root_device.type}"
    return (
        f"training {max_epochs} epochs on {where}, precision {trainer.precision}: "
        f"G {count(n_g)}, D {count(n_d)} parameters"
    )


def _fit(trainer, module, datamodule, ckpt: str | None, out_dir: Path) -> None:
    """`trainer.fit` with the failures a user must act on turned into TrainErrors."""
    from rvc.data.datamodule import DataConfigError
    from rvc.train.module import NonFiniteLossError

    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt)
    except (NonFiniteLossError, DataConfigError) as e:
        raise TrainError(str(e)) from e
    except OSError as e:  # a full disk, a folder removed under us
        raise TrainError(f"writing results to {out_dir} failed: {e}") from e
    if trainer.interrupted:
        raise TrainError("training was interrupted; resume with ckpt_path=last")


def _result(trainer, callbacks: list[Any], loggers: list[Any], out_dir: Path, name: str):
    from rvc.train.callbacks import BestMetrics, BuildIndex, VoiceModelExport
    from rvc.train.module import generator_steps

    export = next((c for c in callbacks if isinstance(c, VoiceModelExport)), None)
    index = next((c for c in callbacks if isinstance(c, BuildIndex)), None)
    voice = export.path if export is not None and export.path.exists() else None
    index_path = index.out_path if index is not None and index.out_path.exists() else None
    _upload_artifacts(loggers, name, [p for p in (voice, index_path) if p])
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    best = next((c for c in callbacks if isinstance(c, BestMetrics)), None)
    metrics.update(best.metrics() if best is not None else {})
    result = TrainResult(
        out_dir=out_dir,
        voice_model=voice,
        index=index_path,
        epochs=trainer.current_epoch,
        steps=generator_steps(trainer),
        metrics=metrics,
    )
    if trainer.is_global_zero:
        write_results(result)
    return result


def write_results(result: TrainResult) -> Path:
    """`<out_dir>/results.json`: the run's metrics (last and best/), epochs, steps, files; what
    a multirun's summary table reads (rvc/train/sweep.py)."""
    from rvc.train.sweep import RESULTS

    path = result.out_dir / RESULTS
    files = {"voice_model": result.voice_model, "index": result.index}
    data = {
        "metrics": {k: v for k, v in sorted(result.metrics.items()) if math.isfinite(v)},
        "epochs": result.epochs,
        "steps": result.steps,
        **{k: str(v) if v else None for k, v in files.items()},
    }
    try:
        atomic.write_text(path, json.dumps(data, indent=1))
    except OSError as e:
        raise TrainError(f"writing {path} failed: {e}") from e
    return path


def objective(cfg: DictConfig, result: TrainResult) -> float | None:
    """The value of `optimized_metric` (what train.py returns to a Hydra sweeper); None when
    the config names none. A name the run did not log is a TrainError listing the known ones."""
    key = cfg.get("optimized_metric")
    if not key:
        return None
    value = result.metrics.get(str(key))
    if value is None:
        raise TrainError(
            f"optimized_metric={key} was not logged by this run; known: "
            f"{', '.join(sorted(result.metrics))}"
        )
    return float(value)


def _upload_artifacts(loggers: list[Any], name: str, files: list[Path]) -> None:
    """The .pth and .index as one W&B artifact (other loggers keep files on disk)."""
    for lg in loggers:
        if type(lg).__name__ == "WandbLogger" and files:
            import wandb

            artifact = wandb.Artifact(f"{name}-voice", type="model")
            for f in files:
                artifact.add_file(str(f))
            lg.experiment.log_artifact(artifact)
