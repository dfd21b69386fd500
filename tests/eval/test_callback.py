"""The evaluation callback in a tiny CPU training run: metrics logged, a weighted score."""

from __future__ import annotations

import csv

import numpy as np

from rvc.train.run import run
from tests.train.conftest import train_cfg


def test_callback_logs_metrics_and_a_monitored_score(tmp_path, store_root):
    weights = "{val/mel: 1.0, val/spk_sim: -2.0}"
    res = run(train_cfg(store_root, f"out_dir={tmp_path / 'run'}", "trainer.max_epochs=2",
                        "callbacks.index=null", "+callbacks.evaluation._target_=rvc.eval.callback.EvaluationMetrics",
                        f"+callbacks.evaluation.score_weights={weights}",
                        "callbacks.model_checkpoint.monitor=val/score",
                        "callbacks.voice_model.monitor=val/score"))  # fmt: skip
    rows = list(csv.DictReader(next((tmp_path / "run" / "csv").rglob("metrics.csv")).open()))
    logged = {k for r in rows for k, v in r.items() if v}
    assert {"val/spk_sim", "val/f0_rmse_cents", "val/vuv_error", "val/mcd", "val/score"} <= logged
    checked = 0
    for r in rows:  # the score is the weighted sum of what was logged with it
        if r.get("val/score"):
            same = [
                q
                for q in rows
                if q["step"] == r["step"] and q.get("val/mel") and q.get("val/spk_sim")
            ]
            want = float(same[0]["val/mel"]) - 2 * float(same[0]["val/spk_sim"])
            assert np.isclose(float(r["val/score"]), want, rtol=1e-5)
            checked += 1
    assert checked == 2  # one per validation
    assert -1 <= res.metrics["val/spk_sim"] <= 1 and res.metrics["val/mcd"] > 0
    assert res.voice_model.exists()
