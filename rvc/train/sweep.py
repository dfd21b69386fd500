"""A train.py multirun (`-m`, or `hparams_search=...` with Optuna): job folders named by what the
sweep varies, and one table at the end.

Hydra's `override_dirname` names a job by every override of the command line
(`callbacks.evaluation=null,data.batch_size=4,embedder=spectral,…`); here a job folder is
`<job number>_<swept key>=<value>,…`: only the keys the sweep varies (the number keeps two jobs
apart when a sampler draws the same values twice). `SweepSummary`, a Hydra callback, finds them
at the start of the multirun and, at its end, reads each job's `results.json` (rvc.train.run)
into `summary.csv` and `summary.md` in the sweep folder, printed too: one row per job, its swept
values, then the best val/mel, val/score and the other best/ metrics.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from rvc.utils import atomic

log = logging.getLogger(__name__)

# the swept keys, from the multirun's start to its jobs (an environment variable: a launcher's
# local worker processes inherit it); unset, a job folder keeps all its overrides
SWEPT_ENV = "RVC_SWEPT_KEYS"
RESULTS = "results.json"  # in each job folder (rvc.train.run.write_results)
FIRST = ("best/val/mel", "best/val/score")  # then the other best/ metrics, sorted


def _parse(overrides: Iterable[str]) -> list[Any]:
    return OverridesParser.create().parse_overrides([str(o) for o in overrides])


def swept_keys(overrides: Iterable[str], params: Mapping[str, Any] | None = None) -> list[str]:
    """The keys a multirun varies: command-line sweeps (`a=1,2`, `choice(...)`, `range(...)`,
    `interval(...)`) and the keys of `hydra.sweeper.params` (BasicSweeper's and Optuna's)."""
    keys = [o.key_or_group for o in _parse(overrides) if o.is_sweep_override()]
    keys += [str(k) for k in (params or {}) if str(k) not in keys]
    return keys


def job_values(task_overrides: Iterable[str], keys: Iterable[str]) -> dict[str, str]:
    """A job's values of the swept `keys`, from its own overrides, in the job's order."""
    want = set(keys)
    return {
        o.key_or_group: o.get_value_element_as_str()
        for o in _parse(task_overrides)
        if o.key_or_group in want
    }


def job_dirname(task_overrides: Any) -> str:
    """`${rvc_swept:${hydra.overrides.task}}`: `key=value,…` of the swept keys (`/` → `_`)."""
    overrides = list(task_overrides or [])
    env = os.environ.get(SWEPT_ENV)
    keys = env.split(",") if env else [o.key_or_group for o in _parse(overrides)]
    values = job_values(overrides, [k for k in keys if k])
    name = ",".join(f"{k}={v}" for k, v in values.items()) or "job"
    return name.replace("/", "_").replace(os.sep, "_")


class SweepSummary(Callback):
    """Name a multirun's job folders by its swept keys; end it with one table of the jobs."""

    def __init__(self, filename: str = "summary") -> None:
        self.filename = filename
        self.keys: list[str] = []
        self.sweep_dir: Path | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        params = OmegaConf.select(config, "hydra.sweeper.params", default=None)
        self.keys = swept_keys(config.hydra.overrides.task, params)
        os.environ[SWEPT_ENV] = ",".join(self.keys)
        # resolved now, once: the launcher's `${now:...}` is cached on the same config
        self.sweep_dir = Path(str(config.hydra.sweep.dir))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        os.environ.pop(SWEPT_ENV, None)
        sweep_dir = self.sweep_dir or Path(str(config.hydra.sweep.dir))
        rows = summary_rows(sweep_dir, self.keys)
        if not rows:
            log.warning("multirun %s: no jobs found", sweep_dir)
            return
        table = write_summary(sweep_dir, rows, self.filename)
        print(f"multirun summary ({sweep_dir / self.filename}.csv):\n{table}")


def _jobs(sweep_dir: Path) -> list[tuple[int, Path]]:
    found = []
    for hydra_yaml in sweep_dir.glob("*/.hydra/hydra.yaml"):
        num = OmegaConf.select(OmegaConf.load(hydra_yaml), "hydra.job.num", default=None)
        found.append((int(num) if num is not None else len(found), hydra_yaml.parents[1]))
    return sorted(found)


def summary_rows(sweep_dir: Path, keys: list[str]) -> list[dict[str, Any]]:
    """One row per job folder of `sweep_dir`: job, its swept values, then its best/ metrics
    (blank for a job that left no results.json: it failed or was stopped)."""
    rows = []
    for num, job in _jobs(sweep_dir):
        task = OmegaConf.load(job / ".hydra" / "overrides.yaml")
        row: dict[str, Any] = {"job": num, **job_values(task, keys)}
        try:
            metrics = json.loads((job / RESULTS).read_text())["metrics"]
        except (OSError, ValueError, KeyError):
            metrics = {}
        row.update({k: v for k, v in metrics.items() if k.startswith("best/")})
        rows.append(row)
    return rows


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    seen = list(dict.fromkeys(k for r in rows for k in r))
    metrics = [k for k in seen if k.startswith("best/")]
    head = [k for k in seen if not k.startswith("best/")]
    rest = sorted(k for k in metrics if k not in FIRST)
    return head + [k for k in FIRST if k in metrics] + rest


def _cell(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else "" if value is None else str(value)


def write_summary(sweep_dir: Path, rows: list[dict[str, Any]], filename: str = "summary") -> str:
    """`summary.csv` and `summary.md` in `sweep_dir` (atomic); returns the markdown table."""
    cols = _columns(rows)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    writer.writeheader()
    writer.writerows([{c: r.get(c) for c in cols} for r in rows])
    atomic.write_text(sweep_dir / f"{filename}.csv", buf.getvalue())
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(_cell(r.get(c)) for c in cols) + " |" for r in rows]
    table = "\n".join(lines)
    atomic.write_text(sweep_dir / f"{filename}.md", table + "\n")
    return table
