"""The benchmark scripts run end to end at tiny sizes and print their one JSON line (a
renamed module once broke bench/extract.py unnoticed: nothing ran it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.mark.slow
@pytest.mark.parametrize(
    "args",
    [
        ["extract.py", "--threads", "2", "--minutes", "0.1", "--skip-reference"],
        ["convert.py", "--threads", "2", "--seconds", "2", "--runs", "1"],
        ["live.py", "--threads", "2", "--seconds", "2", "--blocks", "0.25", "--precision", "fp32"],
    ],
    ids=["extract", "convert", "live"],
)
def test_bench_script_prints_its_json_row(args, tmp_path):
    done = subprocess.run([sys.executable, *args], cwd=BENCH, capture_output=True, text=True,
                          timeout=900)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    row = json.loads(done.stdout.strip().splitlines()[-1])
    assert row["bench"] == args[0].removesuffix(".py") and row["cpu"] and "kernels" in row


@pytest.mark.slow
def test_data_bench_prints_a_row_per_path():
    done = subprocess.run([sys.executable, "data.py", "--minutes", "1"], cwd=BENCH,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in done.stdout.strip().splitlines()]
    assert [r["path"] for r in rows] == ["lazy", "packed", "memory"]
    assert all(r["bench"] == "data" and r["cpu"] and r["batches"] > 0 for r in rows)
    assert [r["lazy"] for r in rows] == [True, True, False]
