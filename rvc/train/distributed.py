"""Training past one device: the `device.ddp_*` knobs built into Lightning's DDPStrategy, and
`data.batch_size=auto` under DDP, where Lightning's tuner refuses to run (Lightning 2.6:
"Tuning the batch size is currently not supported with distributed strategies")."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig

log = logging.getLogger(__name__)

# the batch size the launching process tuned, inherited by the ranks it starts (Lightning's
# popen launcher re-runs train.py with a copy of this process's environment)
AUTO_BATCH_ENV = "RVC_AUTO_BATCH_SIZE"


def _error(message: str) -> Exception:
    from rvc.train.run import TrainError  # lazy: run imports this module

    return TrainError(message)


def build_strategy(strategy: Any, device: DictConfig) -> Any:
    """`trainer.strategy` with the `device.ddp_*` knobs: a `ddp...` name (Lightning's registry:
    `ddp`, `ddp_find_unused_parameters_true`, `ddp_spawn`, ...) becomes its DDPStrategy with
    the knobs added; any other strategy passes through as it is."""
    if not isinstance(strategy, str) or not strategy.startswith("ddp"):
        return strategy
    from lightning.pytorch.strategies import DDPStrategy, StrategyRegistry

    if strategy not in StrategyRegistry:
        raise _error(f"device.strategy={strategy} is not a Lightning strategy name")
    entry = StrategyRegistry[strategy]
    if not issubclass(entry["strategy"], DDPStrategy):
        return strategy
    knobs = {}
    bucket = device.get("ddp_bucket_cap_mb")
    if bucket is not None:  # null: torch's default, 25 MB
        if float(bucket) <= 0:
            raise _error(f"device.ddp_bucket_cap_mb must be > 0 MB (or null), not {bucket}")
        knobs["bucket_cap_mb"] = float(bucket)
    built = entry["strategy"](**entry["init_params"], **knobs)
    log.info("%s: %s", strategy, {**entry["init_params"], **knobs})
    return built


def tune_batch_size(
    trainer, module, datamodule, max_trials: int, one_device: Callable[[], Any]
) -> int:
    """`data.batch_size=auto`: the largest power of two that fits one device, by Lightning's
    tuner; sets `datamodule.batch_size` (per process: each rank loads its own batches).

    Under DDP the launching process tunes on one device (`one_device()`: the run's trainer on
    a single device) before any rank starts, and hands the number to the ranks it starts; ranks
    that a cluster started (SLURM, torchrun) cannot agree on one, so that is refused."""
    if trainer.world_size == 1:
        return _scale(trainer, module, datamodule, max_trials)
    env = getattr(trainer.strategy, "cluster_environment", None)
    if env is not None and env.creates_processes_externally:
        handed = os.environ.get(AUTO_BATCH_ENV)
        if not handed:
            raise _error(
                "data.batch_size=auto cannot tune when the cluster starts the ranks (SLURM, "
                "torchrun): run once with device.devices=1 and pass the batch size it logs as "
                "data.batch_size"
            )
        # a rank the launching process started: its number, the same for every rank
        datamodule.batch_size = int(handed)
        log.info("data.batch_size=auto: %s (tuned on one device before DDP started)", handed)
        return int(handed)
    found = _scale(one_device(), module, datamodule, max_trials)
    os.environ[AUTO_BATCH_ENV] = str(found)  # overwrites any earlier run's in this process
    _release_memory()
    return found


def _scale(trainer, module, datamodule, max_trials: int) -> int:
    from lightning.pytorch.tuner import Tuner

    found = Tuner(trainer).scale_batch_size(
        module, datamodule=datamodule, mode="power", init_val=2, max_trials=max_trials
    )
    log.info("data.batch_size=auto: %s", found)
    return int(found)


def _release_memory() -> None:
    # the trials' cached blocks would otherwise stay with rank 0 through the whole run
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
