"""The five Hydra entry points, inside the package so an installed wheel has them too.

`python train.py …` (the repository's thin scripts), `rvc-train …` (console scripts) and
`python -m rvc.evaluate` all run these. Configs come from the package (`pkg://rvc.conf`, the
registry, rvc/registry.py); a stage's `run(cfg)` lives in `rvc/<stage>/run.py`. A stage's
`RVCError` is printed as one line and exits 1.
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig, OmegaConf

import rvc  # noqa: F401  (registers the ${layout:...} config resolvers before composing)
from rvc import registry
from rvc.errors import RVCError, report
from rvc.train.sweep import job_dirname

CONFIGS = "pkg://rvc.conf"

# `--help` lists each group's options from the registry (rvc/conf/hydra/help/rvc.yaml)
OmegaConf.register_new_resolver("rvc_options_help", registry.options_help, replace=True)
# a multirun's job folders: named by the swept keys only (train.yaml hydra.sweep.subdir)
OmegaConf.register_new_resolver("rvc_swept", job_dirname, replace=True)


def _fail(e: RVCError, stage: str) -> None:
    sys.exit(report(e, stage, f"details: add hydra.verbose=rvc.{stage} to the command"))


def _run(stage: str, run, cfg: DictConfig, lightning: bool = False):
    """A stage's `run(cfg)` with third-party chatter filtered and its RVCError as one line."""
    from rvc.utils.console import quiet_third_party

    quiet_third_party(lightning=lightning)
    try:
        return run(cfg)
    except RVCError as e:
        _fail(e, stage)


@hydra.main(version_base="1.3", config_path=CONFIGS, config_name="extract")
def extract(cfg: DictConfig) -> None:
    """Prepare a voice dataset: ingest → slice → F0 → content features → audit."""
    from rvc.data.audit import print_audit
    from rvc.extract.run import run

    result = _run("extract", run, cfg)
    print_audit(result.audit)
    print(f"store: {result.store.root}")


@hydra.main(version_base="1.3", config_path=CONFIGS, config_name="train")
def train(cfg: DictConfig) -> float | None:
    """Train an RVC voice model on a store made by extract: a .pth and an .index. Returns the
    run's `optimized_metric` (best/val/mel unless the config says another): what a Hydra sweeper
    (hparams_search=...) minimises or maximises."""
    from rvc.train.run import objective, run

    result = _run("train", run, cfg, lightning=True)
    print(f"voice model: {result.voice_model}")
    print(f"index:       {result.index}")
    print(f"epochs: {result.epochs}, steps: {result.steps}, best val/mel: "
          f"{result.metrics.get('best/val/mel', float('nan')):.4f}")  # fmt: skip
    try:
        value = objective(cfg, result)
    except RVCError as e:
        _fail(e, "train")
    if value is not None and cfg.optimized_metric != "best/val/mel":  # that one is printed above
        print(f"{cfg.optimized_metric}: {value:.4f}")
    return value


@hydra.main(version_base="1.3", config_path=CONFIGS, config_name="infer")
def infer(cfg: DictConfig) -> None:
    """Convert recordings into a trained voice: a .pth (ours, RVC WebUI or Applio), its index."""
    from rvc.infer.run import run, summary

    result = _run("infer", run, cfg)
    print(summary(result))
    if result.failed:
        sys.exit(1)


@hydra.main(version_base="1.3", config_path=CONFIGS, config_name="live")
def _live(cfg: DictConfig) -> None:
    from rvc.infer.live import run, summary

    result = _run("live", run, cfg)
    # with output=- stdout is the audio itself
    print(summary(result), file=sys.stderr if str(cfg.output) == "-" else sys.stdout)


def live() -> None:
    """Speak into a trained voice: a stream (microphone, file, stdin) converted block by block.
    `--list-devices` lists the audio devices (before Hydra, which has no such flag)."""
    if "--list-devices" in sys.argv[1:]:
        from rvc.infer.live import list_devices

        try:
            print(list_devices())
        except RVCError as e:
            sys.exit(report(e, "live"))
        return
    _live()


@hydra.main(version_base="1.3", config_path=CONFIGS, config_name="evaluate")
def evaluate(cfg: DictConfig) -> None:
    """Convert held-out slices and test audio of a trained voice; write a report."""
    from rvc.eval.run import run

    try:
        report_, html = run(cfg)
    except RVCError as e:
        _fail(e, "evaluate")
    for k, v in report_.summary().items():
        print(f"{k:>15}: {v:.4f}")
    print(f"report: {html}")
