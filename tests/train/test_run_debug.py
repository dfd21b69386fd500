"""The debug group through a real tiny run (model=debug, CPU)."""

from __future__ import annotations

import json

import pytest

from rvc.train.run import run
from tests.train.conftest import train_cfg


@pytest.mark.slow
def test_fast_dev_run_goes_through_the_whole_path(tmp_path, store_root):
    res = run(train_cfg(store_root, f"out_dir={tmp_path / 'run'}", "debug=fdr"))
    assert res.steps == 1 and res.voice_model.exists() and res.index.exists()
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["steps"] == 1 and results["metrics"]["best/val/mel"] > 0
