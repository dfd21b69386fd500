"""`data.batch_size=auto` under DDP (rvc.train.distributed): tuned once on one device by the
launching process and handed to its ranks; refused where a cluster starts the ranks."""

from __future__ import annotations

from types import SimpleNamespace

import lightning as L
import pytest

import rvc.train.distributed as dist
from rvc.train.run import TrainError


@pytest.fixture(autouse=True)
def _rank_zero_kept():
    """A Trainer built as rank 1 sets Lightning's process-wide rank; later tests' loggers
    (rank-zero only) would silently write nothing."""
    from lightning.pytorch.utilities.rank_zero import rank_zero_only

    rank = getattr(rank_zero_only, "rank", 0)
    yield
    rank_zero_only.rank = rank


def _ddp_trainer() -> L.Trainer:
    return L.Trainer(accelerator="cpu", devices=2, strategy="ddp", logger=False,
                     enable_checkpointing=False, enable_progress_bar=False)  # fmt: skip


def test_the_launching_process_tunes_on_one_device_for_every_rank(monkeypatch):
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.setenv(dist.AUTO_BATCH_ENV, "64")  # an earlier run's: tuned again, not reused
    single = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False)
    tuned_on = []

    def scale(trainer, module, datamodule, max_trials):
        tuned_on.append(trainer)
        datamodule.batch_size = 8
        return 8

    monkeypatch.setattr(dist, "_scale", scale)
    dm = SimpleNamespace(batch_size=2)
    assert dist.tune_batch_size(_ddp_trainer(), None, dm, 3, lambda: single) == 8
    assert tuned_on == [single] and dm.batch_size == 8
    assert dist.os.environ[dist.AUTO_BATCH_ENV] == "8"  # what the ranks it starts inherit


def test_a_started_rank_takes_the_handed_size_or_refuses(monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "1")  # as Lightning's launcher starts rank 1
    trainer = _ddp_trainer()

    def never():
        raise AssertionError("a rank must not tune")

    monkeypatch.setenv(dist.AUTO_BATCH_ENV, "16")
    dm = SimpleNamespace(batch_size=2)
    assert dist.tune_batch_size(trainer, None, dm, 3, never) == 16 and dm.batch_size == 16
    monkeypatch.delenv(dist.AUTO_BATCH_ENV)  # SLURM, torchrun: nobody tuned before the ranks
    with pytest.raises(TrainError, match="cannot tune when the cluster starts the ranks"):
        dist.tune_batch_size(trainer, None, dm, 3, never)
