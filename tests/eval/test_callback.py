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


def test_per_speaker_mel_sums_every_slice_and_logs_only_with_two_speakers():
    """`val/spk/<id>/mel`: Σ error / Σ bins per speaker over the batches (as val/mel over all)."""
    from types import SimpleNamespace

    import torch

    from rvc.eval.callback import EvaluationMetrics

    logged = {}
    module = SimpleNamespace(
        generator=SimpleNamespace(emb_g=torch.nn.Embedding(109, 2)), device=torch.device("cpu"),
        log=lambda k, v, **kw: logged.__setitem__(k, v), _val_examples=[],
    )  # fmt: skip
    trainer = SimpleNamespace(
        sanity_checking=False, is_global_zero=True,
        strategy=SimpleNamespace(reduce=lambda t, reduce_op: t),  # one process
    )  # fmt: skip
    cb = EvaluationMetrics()
    batches = [([2.0, 6.0], [10, 20], [0, 3]), ([3.0], [10], [3])]
    cb.on_validation_epoch_start(trainer, module)
    for s, n, sid in batches:
        out = {"mel_sum": torch.tensor(s), "mel_count": torch.tensor(n), "sid": torch.tensor(sid)}
        cb.on_validation_batch_end(trainer, module, out, None, 0)
    cb.on_validation_epoch_end(trainer, module)
    assert logged == {"val/spk/0/mel": 0.2, "val/spk/3/mel": 0.3}
    logged.clear()
    cb.on_validation_epoch_start(trainer, module)  # one speaker: val/mel already says it
    cb.on_validation_batch_end(
        trainer,
        module,
        {"mel_sum": torch.tensor([1.0]), "mel_count": torch.tensor([4]), "sid": torch.tensor([0])},
        None,
        0,
    )
    cb.on_validation_epoch_end(trainer, module)
    assert logged == {}


def test_per_speaker_objective_metrics_group_the_kept_slices():
    from rvc.eval.callback import EvaluationMetrics

    cb = EvaluationMetrics(n_slices=3)
    rows = [{"val/spk_sim": x, "val/f0_rmse_cents": 1.0, "val/vuv_error": 0.0, "val/mcd": 2.0,
             "sid": sid} for x, sid in ((0.2, 0), (0.4, 0), (0.9, 5))]  # fmt: skip
    cb._rows = lambda examples, sr: rows
    out = cb.measure([], 16000)
    assert np.isclose(out["val/spk_sim"], 0.5) and np.isclose(out["val/spk/0/spk_sim"], 0.3)
    assert out["val/spk/5/spk_sim"] == 0.9 and out["val/spk/5/mcd"] == 2.0
