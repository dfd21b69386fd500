"""Every conf/f0 option composes and instantiates on CPU without touching the network."""

from __future__ import annotations

import pytest
from hydra.utils import instantiate

from rvc.f0.base import F0Estimator
from rvc.registry import load, names
from tests.conftest import compose

OPTIONS = names("f0")  # shared `_bases` are not options


def test_all_expected_options_exist():
    assert {"rmvpe", "crepe", "crepe_tiny", "fcpe", "harvest", "pm"} <= set(OPTIONS)


@pytest.fixture
def no_hub(monkeypatch):
    """Any hub call fails the test: construction must be lazy."""
    import huggingface_hub

    def forbidden(*args, **kwargs):
        raise AssertionError("an F0 estimator touched the hub at construction")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", forbidden)


@pytest.mark.parametrize("name", OPTIONS)
def test_yaml_instantiates(name, no_hub):
    cfg = load("f0", name)
    assert "device" not in cfg, "the pipeline passes device=; keep it out of the yaml"
    est = instantiate(cfg, device="cpu")
    assert isinstance(est, F0Estimator)
    assert est.device == "cpu"
    assert (est.f0_min, est.f0_max) == (cfg.f0_min, cfg.f0_max) == (50, 1100)


@pytest.mark.parametrize("name", OPTIONS)
def test_group_composes(name, no_hub):
    cfg = compose(None, [f"+f0={name}"])
    est = instantiate(cfg.f0, device="cpu")
    assert isinstance(est, F0Estimator)
    assert est.name == name
