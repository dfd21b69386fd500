"""Every conf/f0 option composes and instantiates on CPU without touching the network."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from rvc.f0.base import F0Estimator

CONF = Path(__file__).resolve().parents[2] / "rvc" / "conf"
OPTIONS = sorted(p.stem for p in (CONF / "f0").glob("*.yaml"))


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
    cfg = OmegaConf.load(CONF / "f0" / f"{name}.yaml")
    assert "device" not in cfg, "the pipeline passes device=; keep it out of the yaml"
    est = instantiate(cfg, device="cpu")
    assert isinstance(est, F0Estimator)
    assert est.device == "cpu"
    assert (est.f0_min, est.f0_max) == (cfg.f0_min, cfg.f0_max) == (50, 1100)


@pytest.mark.parametrize("name", OPTIONS)
def test_group_composes(name, no_hub):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name=None, overrides=[f"+f0={name}"])
    est = instantiate(cfg.f0, device="cpu")
    assert isinstance(est, F0Estimator)
    assert est.name == name
