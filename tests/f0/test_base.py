"""The F0Estimator contract: load()/to() and the conversion hook's default."""

from __future__ import annotations

import numpy as np
import torch

from rvc.f0.base import F0Estimator


class _Net(F0Estimator):
    """A 'model' holding a torch module: F0 = 100 Hz on every frame."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self._net = None

    def load(self):
        self._net = torch.nn.Linear(1, 1).to(self.device)
        return self

    def compute(self, audio):
        return np.full(len(audio) // 160, 100.0, dtype=np.float32)


def test_to_moves_loaded_networks_and_later_loads_follow():
    est = _Net().load().to("meta")
    assert est.device == "meta" and est._net.weight.device.type == "meta"
    assert _Net().to("meta").load()._net.weight.device.type == "meta"


def test_conversion_uses_the_extraction_track_unless_the_method_says_otherwise():
    est, x = _Net(), np.zeros(1_600, dtype=np.float32)
    np.testing.assert_array_equal(est.for_conversion(x, filter_radius=7), est.compute(x))
    assert est.compute_batch([x, x[:800]])[1].shape == (5,)
