"""train.py multiruns (rvc/train/sweep.py): job folders named by the swept keys, one summary
table at the end, train.py's `optimized_metric`, and the Optuna search composing and running."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from rvc.train.run import TrainError, TrainResult, objective
from rvc.train.sweep import (
    SWEPT_ENV,
    job_dirname,
    job_values,
    summary_rows,
    swept_keys,
    write_summary,
)
from tests.conftest import compose

ROOT = Path(__file__).resolve().parents[2]


def test_swept_keys_are_the_sweeps_of_the_command_line_and_the_sweeper_params():
    line = ["name=v", "model=debug", "optim.optimizer.lr=1e-4,2e-4", "vocoder=choice(a,b)",
            "+callbacks.x=1", "trainer.max_epochs=range(1,3)"]  # fmt: skip
    keys = swept_keys(line, {"data.batch_size": "4,8", "vocoder": "a,b"})
    assert keys == ["optim.optimizer.lr", "vocoder", "trainer.max_epochs", "data.batch_size"]
    job = ["name=v", "model=debug", "optim.optimizer.lr=0.0002", "vocoder=a", "+callbacks.x=1",
           "trainer.max_epochs=2", "data.batch_size=8"]  # fmt: skip
    assert job_values(job, keys) == {
        "optim.optimizer.lr": "0.0002", "vocoder": "a", "trainer.max_epochs": "2",
        "data.batch_size": "8",
    }  # fmt: skip


def test_job_folder_names_hold_only_the_swept_keys(monkeypatch):
    job = ["callbacks.evaluation=null", "data.batch_size=4", "embedder=spectral",
           "vocoder=hifigan", "paths.root=/data/runs", "hydra/launcher=slurm"]  # fmt: skip
    monkeypatch.setenv(SWEPT_ENV, "vocoder,data.batch_size")
    assert job_dirname(job) == "data.batch_size=4,vocoder=hifigan"
    monkeypatch.setenv(SWEPT_ENV, "paths.root,hydra/launcher")  # no folder separators in a name
    assert job_dirname(job) == "paths.root=_data_runs,hydra_launcher=slurm"
    monkeypatch.delenv(SWEPT_ENV)  # a launcher that lost the keys: every override, as Hydra's
    assert job_dirname(job).startswith("callbacks.evaluation=null,data.batch_size=4,embedder=")
    assert job_dirname([]) == "job"


def _job(sweep: Path, num: int, overrides: list[str], metrics: dict | None) -> Path:
    job = sweep / f"{num}_x"
    (job / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create({"hydra": {"job": {"num": num}}}), job / ".hydra/hydra.yaml")
    OmegaConf.save(OmegaConf.create(overrides), job / ".hydra" / "overrides.yaml")
    if metrics is not None:
        (job / "results.json").write_text(json.dumps({"metrics": metrics}))
    return job


def test_summary_has_a_row_per_job_swept_values_then_best_metrics(tmp_path):
    sweep = tmp_path / "sweep"
    for num, lr in ((1, 2e-4), (0, 1e-4), (10, 3e-4)):  # job 10 sorts after 1, not before
        metrics = {"best/val/mcd": 5.0 + num, "best/val/mel": 1.0 / (num + 1), "val/mel": 9.9,
                   "best/val/score": -0.5 * num}  # fmt: skip
        _job(sweep, num, ["name=v", f"optim.optimizer.lr={lr}", "vocoder=hifigan"], metrics)
    _job(sweep, 11, ["name=v", "optim.optimizer.lr=0.0004", "vocoder=hifigan"], None)  # failed
    rows = summary_rows(sweep, ["optim.optimizer.lr"])
    assert [r["job"] for r in rows] == [0, 1, 10, 11]
    assert [r["optim.optimizer.lr"] for r in rows] == ["0.0001", "0.0002", "0.0003", "0.0004"]
    assert "vocoder" not in rows[0] and "val/mel" not in rows[0]  # not swept; not a best/
    table = write_summary(sweep, rows)
    header = "| job | optim.optimizer.lr | best/val/mel | best/val/score | best/val/mcd |"
    assert table.splitlines()[0] == header
    assert table.splitlines()[3] == "| 1 | 0.0002 | 0.5000 | -0.5000 | 6.0000 |"
    assert table.splitlines()[-1] == "| 11 | 0.0004 |  |  |  |"
    assert (sweep / "summary.md").read_text() == table + "\n"
    got = list(csv.DictReader((sweep / "summary.csv").open()))
    assert float(got[2]["best/val/mcd"]) == 15.0 and got[3]["best/val/mel"] == ""


def test_train_returns_the_optimized_metric():
    res = TrainResult(Path("."), None, None, 1, 1, {"best/val/mel": 0.7, "best/val/score": -1.5})
    assert objective(compose("train", ["name=x"]), res) == 0.7  # the default: best/val/mel
    assert objective(compose("train", ["name=x", "optimized_metric=best/val/score"]), res) == -1.5
    assert objective(compose("train", ["name=x", "optimized_metric=null"]), res) is None
    with pytest.raises(TrainError, match="optimized_metric=best/val/spk_sim.*best/val/mel"):
        objective(compose("train", ["name=x", "optimized_metric=best/val/spk_sim"]), res)


def test_optuna_search_composes_with_its_sweeper_plugin(tmp_path):
    from hydra.core.plugins import Plugins
    from hydra.plugins.sweeper import Sweeper

    cfg = compose("train", ["name=x", f"out_dir={tmp_path}", "hparams_search=val_score"],
                  return_hydra_config=True)  # fmt: skip
    sweeper = cfg.hydra.sweeper
    found = {f"{p.__module__}.{p.__name__}" for p in Plugins.instance().discover(Sweeper)}
    assert sweeper._target_ in found and "optuna" in sweeper._target_.lower()
    assert sweeper.direction == "minimize" and sweeper.sampler._target_.endswith("TPESampler")
    assert set(sweeper.params) == {"trainer.max_epochs", "vocoder", "optim.optimizer.lr"}
    # what it minimises is what train.py returns, and every monitor follows it
    assert cfg.optimized_metric == "best/val/score"
    assert cfg.callbacks.evaluation.score_weights == {"val/mel": 1.0, "val/spk_sim": -2.0}
    monitors = {cfg.callbacks[c].monitor for c in ("model_checkpoint", "early_stopping",
                                                    "voice_model")}  # fmt: skip
    assert monitors == {"val/score"} and cfg.callbacks.voice_model.mode == "min"


# ---- real multiruns, through the entry point ---------------------------------------------------
TINY = ["name=t", "model=debug", "f0=pm", "embedder=spectral", "pretrained=none",
        "device.num_workers=0", "data.batch_size=4", "callbacks.progress=null",
        "callbacks.index=null", "trainer.max_epochs=1", "+trainer.limit_train_batches=1",
        "logger=none"]  # fmt: skip


def _multirun(
    store_root: Path, sweep: Path, *overrides: str, tiny: list[str] = TINY
) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(ROOT / "train.py"), "-m", *tiny, f"paths.root={store_root}",
           f"hydra.sweep.dir={sweep}", *overrides]  # fmt: skip
    out = subprocess.run(cmd, cwd=sweep.parent, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out


@pytest.mark.slow
def test_a_tiny_multirun_names_its_jobs_by_the_swept_key_and_ends_with_a_table(
    tmp_path, store_root
):
    sweep = tmp_path / "sweep"
    out = _multirun(store_root, sweep, "callbacks.evaluation=null", "optim.optimizer.lr=1e-4,2e-4")
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert jobs == ["0_optim.optimizer.lr=0.0001", "1_optim.optimizer.lr=0.0002"]
    rows = list(csv.DictReader((sweep / "summary.csv").open()))
    assert [r["optim.optimizer.lr"] for r in rows] == ["0.0001", "0.0002"]
    assert list(rows[0])[:3] == ["job", "optim.optimizer.lr", "best/val/mel"]
    for r, job in zip(rows, jobs, strict=True):  # each row is its job's results.json
        best = json.loads((sweep / job / "results.json").read_text())["metrics"]["best/val/mel"]
        assert math.isfinite(best) and math.isclose(float(r["best/val/mel"]), best, rel_tol=1e-4)
    assert (sweep / "summary.md").read_text().strip() in out.stdout


@pytest.mark.slow
def test_an_optuna_search_of_two_trials_runs(tmp_path, store_root):
    sweep = tmp_path / "sweep"
    # the search's own space, shrunk: one epoch, one vocoder, the learning rate drawn
    space = ("{optim.optimizer.lr: 'interval(1e-4, 2e-4)', trainer.max_epochs: 'choice(1)', "
             "vocoder: 'choice(hifigan)'}")  # fmt: skip
    out = _multirun(
        store_root, sweep, "hparams_search=val_score", "hydra.sweeper.n_trials=2",
        "hydra.sweeper.sampler.n_startup_trials=2", f"hydra.sweeper.params={space}",
        tiny=[o for o in TINY if not o.startswith("trainer.max_epochs=")],
    )  # fmt: skip
    rows = list(csv.DictReader((sweep / "summary.csv").open()))
    assert [r["job"] for r in rows] == ["0", "1"]
    assert all(1e-4 <= float(r["optim.optimizer.lr"]) <= 2e-4 for r in rows)
    scores = [float(r["best/val/score"]) for r in rows]
    best = OmegaConf.load(sweep / "optimization_results.yaml")
    assert math.isclose(float(best.best_value), min(scores), rel_tol=1e-4), out.stdout[-2000:]
