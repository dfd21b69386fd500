"""Training a base (pretrained) model: the callback that writes its G/D files and model card
(rvc/io/base_model.py, docs/base_models.md), and the speaker embedding sized to the corpus.

`experiment=pretrain_base` turns both on: `callbacks.base_model` and
`model.synthesizer.spk_embed_dim=auto`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig, open_dict

from rvc import __version__
from rvc.data.store import FeatureStore
from rvc.io.base_model import RVC_SPEAKERS, BaseFiles, save_base_model
from rvc.train.module import generator_steps

log = logging.getLogger(__name__)


def speaker_rows(speakers: Iterable[int], at_least: int = RVC_SPEAKERS) -> int:
    """`emb_g` rows for these speaker ids: RVC's 109 unless the ids need more."""
    return max(int(at_least), max(speakers, default=-1) + 1)


def pretrained_rows(cfg: DictConfig) -> int:
    """`emb_g` rows of the pretrained G file the run starts from; 0 without one (or when it is
    no G file: the load that follows reports that)."""
    from hydra.utils import instantiate

    from rvc.io.checkpoints import load_model_state

    try:
        paths = instantiate(cfg.pretrained).resolve(
            cfg.vocoder.name, cfg.model.sample_rate, cfg.model.use_f0, cfg.embedder.version
        )
        if paths.generator is None:
            return 0
        return int(load_model_state(paths.generator)["emb_g.weight"].shape[0])
    except Exception:  # noqa: BLE001  (load_pretrained gives the user-facing error)
        return 0


def size_speaker_embedding(cfg: DictConfig, store: FeatureStore) -> int:
    """Resolve `model.synthesizer.spk_embed_dim=auto` from the store's speaker ids and the rows
    of a pretrained G it starts from (as Applio sizes emb_g from the file); an explicit size too
    small for the store's ids is a ValueError. Returns the rows."""
    ids = {r.speaker for r in store.slices.values()}
    value = cfg.model.synthesizer.spk_embed_dim
    if str(value) != "auto":
        rows = int(value)
        if ids and max(ids) >= rows:
            raise ValueError(
                f"the store {store.root} has speaker id {max(ids)}, but "
                f"model.synthesizer.spk_embed_dim={rows}; set it to auto or above {max(ids)}"
            )
        return rows
    # 109 even for fewer speakers: every RVC tool's fine-tuning builds 109 rows (the WebUI from
    # its config, strictly), so a base with 109 loads everywhere
    from_file = pretrained_rows(cfg)
    rows = max(speaker_rows(ids), from_file)
    if rows > RVC_SPEAKERS:
        log.warning(
            "emb_g with %d speaker rows (store ids up to %d, pretrained G %d): the RVC WebUI "
            "cannot fine-tune from this G (it builds %d rows); Applio can (it takes the file's)",
            rows, max(ids, default=0), from_file, RVC_SPEAKERS,
        )  # fmt: skip
    with open_dict(cfg):
        cfg.model.synthesizer.spk_embed_dim = rows
    return rows


def describe_method(config: dict[str, Any] | None) -> str | None:
    """A stage config's short name: RMVPEEstimator -> "rmvpe", CrepeEstimator(tiny) -> "crepe-tiny"."""
    if not config:
        return None
    name = str(config.get("_target_", "?")).rsplit(".", 1)[-1].removesuffix("Estimator").lower()
    return f"{name}-{config['model']}" if config.get("model") else name


def corpus_summary(store: FeatureStore) -> dict[str, Any]:
    """What the base learnt from: hours, slices and speaker ids of the store, its F0 method."""
    recs = list(store.slices.values())
    rate = int(store.params.get("sample_rate") or 0)
    samples = sum(r.n_samples for r in recs)
    seconds = samples / rate if rate else sum(r.n_samples_16k for r in recs) / 16000
    ids = sorted({r.speaker for r in recs})
    return {
        "store": str(store.root),
        "corpus_hours": round(seconds / 3600, 3),
        "slices": len(recs),
        "speakers": len(ids),
        "speaker_ids": ids,
        "f0_method": describe_method(store.stages.get("f0", {}).get("config")),
    }


class BaseModelExport(Callback):
    """Write `<out_dir>/f0G40k.pth`, `f0D40k.pth` and `model_card.json` when fit ends, and every
    `every_n_steps` generator steps (into `<out_dir>/s<step>/` with `snapshots`, else over the
    same files). Rank 0 only; every file atomic."""

    def __init__(
        self,
        out_dir: str,
        exp_dir: str,
        name: str | None = None,
        every_n_steps: int | None = 0,
        snapshots: bool = True,
        half: bool = False,
        embedder: str | None = None,
        version: str | None = None,
        author: str | None = None,
    ) -> None:
        self.out_dir = Path(out_dir)
        self.exp_dir = Path(exp_dir)
        self.name = name
        self.every_n_steps = int(every_n_steps or 0)
        self.snapshots = bool(snapshots)
        self.half = bool(half)  # fp16: the published files' precision, half the size
        self.embedder = embedder
        self.version = version
        self.author = author
        self.corpus: dict[str, Any] = {}
        self.last: BaseFiles | None = None
        self._written_step = -1
        self._val_step: int | None = None

    def setup(self, trainer: L.Trainer, module: L.LightningModule, stage: str) -> None:
        if trainer.is_global_zero and not self.corpus:
            self.corpus = corpus_summary(FeatureStore(self.exp_dir))

    def card(self, trainer: L.Trainer, module: L.LightningModule) -> dict[str, Any]:
        """The model card: what the base is, what it learnt from, how far and how well."""
        g = module.generator
        metrics = {
            k: round(float(v), 6)
            for k, v in sorted(trainer.callback_metrics.items())
            if k.startswith("val/") and v.numel() == 1
        }
        return {
            "name": self.name,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "created_by": f"rvc-lightning {__version__}",
            "author": self.author,
            "sample_rate": int(g.sample_rate),
            "version": self.version,
            "use_f0": bool(g.use_f0),
            "vocoder": g.vocoder,
            "embedder": self.embedder,
            "spk_embed_dim": int(g.emb_g.num_embeddings),
            # the WebUI builds 109 rows; Applio takes the file's
            "rvc_webui_compatible": int(g.emb_g.num_embeddings) == RVC_SPEAKERS,
            **self.corpus,
            "steps": generator_steps(trainer),
            "epochs": int(trainer.current_epoch),  # completed
            "val_step": self._val_step,  # the validation the metrics come from
            "val_metrics": metrics,
            "config": list(g.config),
        }

    def write(self, trainer: L.Trainer, module: L.LightningModule, folder: Path) -> BaseFiles:
        """The base G/D and card into `folder`."""
        g = module.generator
        self.last = save_base_model(
            folder, g, module.gan.discriminator, self.card(trainer, module),
            sample_rate=g.sample_rate, use_f0=g.use_f0, half=self.half,
        )  # fmt: skip
        log.info("base model %s, %s (step %d)", self.last.generator, self.last.discriminator,
                 generator_steps(trainer))  # fmt: skip
        return self.last

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._val_step = generator_steps(trainer)

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, *args) -> None:
        step = generator_steps(trainer)
        # with optim.accumulate > 1 one step spans several batches: write it once
        if not self.every_n_steps or step % self.every_n_steps or step == self._written_step:
            return
        self._written_step = step
        if trainer.is_global_zero:
            self.write(
                trainer, module, self.out_dir / f"s{step}" if self.snapshots else self.out_dir
            )

    def on_fit_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            self.write(trainer, module, self.out_dir)
