"""The training callbacks on public trainer state: VoiceModelExport's `mode`, BestMetrics, and
the evaluation callback's score logged through the module (rvc/train/callbacks.py,
rvc/eval/callback.py). A fake trainer holds only what Lightning makes public."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from rvc.eval.callback import EvaluationMetrics
from rvc.train.callbacks import BestMetrics, VoiceModelExport


def _trainer(**metrics: float) -> SimpleNamespace:
    return SimpleNamespace(
        sanity_checking=False, is_global_zero=True, current_epoch=0,
        callback_metrics={k: torch.tensor(v) for k, v in metrics.items()},
    )  # fmt: skip


def _exports(cb: VoiceModelExport, monitor: str, values: list[float]) -> list[float]:
    """The values at which `cb` exported, fed one validation each."""
    done = []
    cb.export = lambda trainer, module, path: done.append(float(trainer.callback_metrics[monitor]))
    for v in values:
        cb.on_validation_end(_trainer(**{monitor: v}), None)
    return done


@pytest.mark.parametrize(
    "mode,want", [("min", [3.0, 2.0, 1.0]), ("max", [3.0, 4.0, 5.0])]
)  # fmt: skip
def test_voice_model_export_follows_its_mode(tmp_path, mode, want):
    cb = VoiceModelExport(str(tmp_path), "v", monitor="val/spk_sim", mode=mode)
    assert _exports(cb, "val/spk_sim", [3.0, 4.0, 2.0, math.nan, 5.0, 1.0]) == want
    assert cb.best == want[-1]


def test_voice_model_export_mode_is_checked_and_resumed(tmp_path):
    with pytest.raises(ValueError, match="callbacks.voice_model.mode must be min or max"):
        VoiceModelExport(str(tmp_path), "v", mode="lower")
    first = VoiceModelExport(str(tmp_path), "v", monitor="val/spk_sim", mode="max")
    _exports(first, "val/spk_sim", [0.5, 0.75])
    again = VoiceModelExport(str(tmp_path), "v", monitor="val/spk_sim", mode="max")
    again.load_state_dict(first.state_dict())
    assert _exports(again, "val/spk_sim", [0.625, 0.875]) == [0.875]  # 0.625 < 0.75: not better
    other = VoiceModelExport(str(tmp_path), "v", monitor="val/spk_sim", mode="min")
    other.load_state_dict(first.state_dict())  # a resumed run with another rule starts afresh
    assert other.best == math.inf
    old = VoiceModelExport(str(tmp_path), "v")
    old.load_state_dict({"best": 0.5})  # a checkpoint from before `mode`: val/mel, min
    assert old.best == 0.5 and _exports(old, "val/mel", [0.625, 0.375]) == [0.375]


def test_best_metrics_keep_each_metrics_best_by_its_direction():
    cb = BestMetrics()
    for mel, sim in ((2.0, 0.1), (1.0, 0.3), (1.5, 0.2), (math.nan, 0.9)):
        cb.on_validation_end(
            _trainer(**{"val/mel": mel, "val/spk_sim": sim, "train/g/mel": 0.0}), None
        )
    sanity = _trainer(**{"val/mel": 0.01})
    sanity.sanity_checking = True
    cb.on_validation_end(sanity, None)  # sanity checks are not validations of the run
    assert cb.metrics() == {"best/val/mel": 1.0, "best/val/spk_sim": pytest.approx(0.9)}
    again = BestMetrics()
    again.load_state_dict(cb.state_dict())
    assert again.metrics() == cb.metrics()


class _Module:
    """What the evaluation callback may touch: the examples, the generator's rate, `log`."""

    def __init__(self, trainer: SimpleNamespace):
        self.trainer, self.logged = trainer, {}
        self._val_examples = [{"real": np.zeros(100), "fake": np.zeros(100)}]
        self.generator = SimpleNamespace(sample_rate=16000)

    def log(self, key: str, value: float, **kwargs) -> None:
        self.logged[key] = value
        self.trainer.callback_metrics[key] = torch.tensor(value)  # as Lightning's results


def test_evaluation_score_is_logged_through_the_module():
    trainer = _trainer(**{"val/mel": 0.5})
    module = _Module(trainer)
    cb = EvaluationMetrics(score_weights={"val/mel": 1.0, "val/spk_sim": -2.0})
    cb.measure = lambda examples, sr: {"val/spk_sim": 0.25, "val/mcd": 7.0}
    cb.on_validation_epoch_end(trainer, module)
    assert module.logged == {"val/spk_sim": 0.25, "val/mcd": 7.0, "val/score": 0.0}
    bad = EvaluationMetrics(score_weights={"val/nope": 1.0})
    bad.measure = cb.measure
    with pytest.raises(KeyError, match=r"score_weights names \['val/nope'\], not logged"):
        bad.on_validation_epoch_end(trainer, _Module(trainer))
