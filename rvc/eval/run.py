"""`python -m rvc.evaluate`: build the converter and the metric F0 tracker, evaluate, report."""

from __future__ import annotations

from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from rvc.data.datamodule import DataConfigError, open_store
from rvc.errors import RVCError
from rvc.eval.measure import Report, evaluate
from rvc.utils.device import torch_device_type


class EvalError(RVCError, RuntimeError):
    """A problem that stops the evaluation, with a message for the user."""


def run(cfg: DictConfig) -> tuple[Report, Path]:
    from rvc.infer import ConverterLoadError, ConvertOptions, load_converter

    device = torch_device_type(cfg.device.accelerator)
    exp_dir = Path(cfg.paths.exp_dir)
    try:
        open_store(exp_dir)  # the held-out slices come from it
    except DataConfigError as e:
        raise EvalError(str(e)) from e
    try:
        conv = load_converter(cfg.voice, cfg.index_file, cfg.f0, cfg.get("embedder"), device)
        opts = ConvertOptions.from_mapping(OmegaConf.to_container(cfg.convert, resolve=True))
        report = evaluate(
            conv, exp_dir, [str(i) for i in cfg.inputs], opts, cfg.out_dir, instantiate(cfg.metric_f0),
            val_slices=cfg.val_slices, seed=cfg.seed, max_items=cfg.max_items,
            val_speakers=cfg.get("val_speakers", 0),
            target_clips=cfg.target_clips,
        )  # fmt: skip
    except (ConverterLoadError, ValueError, OSError) as e:
        raise EvalError(str(e)) from e
    return report, Path(cfg.out_dir) / "report.html"
