"""Every config group option composes into the real extract config and builds."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.utils import instantiate

from rvc.embedders.base import Embedder
from rvc.extract.ingest import SliceParams
from rvc.f0.base import F0Estimator
from rvc.utils.device import extract_devices
from tests.conftest import CONF_DIR, compose

BASE = ["name=x", "inputs=[a]"]


def _options(group: str) -> list[str]:
    # `_base` and other `_`-names are shared parts of a group, not options
    return sorted(p.stem for p in (Path(CONF_DIR) / group).glob("*.yaml") if p.stem[0] != "_")


@pytest.mark.parametrize("device", _options("device"))
def test_device_options_compose(device):
    cfg = compose("extract", [*BASE, f"device={device}"])
    assert cfg.device.accelerator in ("cpu", "gpu")
    if cfg.device.accelerator == "cpu":
        assert extract_devices("cpu", cfg.device.devices) == ["cpu"]


@pytest.mark.parametrize(
    "override",
    [
        "slicing.split=auto",
        "slicing.split=simple",
        "slicing.split=skip",
        "slicing.normalize=none",
        "slicing.normalize=pre",
        "slicing.normalize=post",
        "slicing.highpass=null",
        "slicing.denoise=true",
    ],
)
def test_slicing_options_build_slice_params(override):
    cfg = compose("extract", [*BASE, override])
    p = SliceParams(sample_rate=cfg.model.sample_rate, **cfg.slicing)
    key, value = override.split("=")
    got = getattr(p, key.split(".")[-1])
    assert str(got).lower() in (value, "none" if value == "null" else value, f"{value}.0")


@pytest.mark.parametrize("model,rate", [("32k", 32000), ("40k", 40000), ("48k", 48000)])
def test_model_group_sets_the_slices_rate(model, rate):
    cfg = compose("extract", [*BASE, f"model={model}"])
    assert SliceParams(sample_rate=cfg.model.sample_rate, **cfg.slicing).sample_rate == rate


def test_bad_slicing_option_is_a_clear_error():
    cfg = compose("extract", [*BASE, "slicing.split=fancy"])
    with pytest.raises(ValueError, match="slicing.split"):
        SliceParams(sample_rate=cfg.model.sample_rate, **cfg.slicing)


@pytest.mark.parametrize("group", ["f0", "embedder"])
def test_model_groups_compose_and_instantiate(group):
    options = _options(group)
    assert options, f"conf/{group} is empty"
    for opt in options:
        cfg = compose(
            "extract",
            [*BASE, f"{group}={opt}"]
            + (["embedder.local_path=/nonexistent"] if opt == "custom" else []),
        )
        obj = instantiate(cfg[group], device="cpu")  # lazy: nothing is downloaded here
        module, name = cfg[group]._target_.rsplit(".", 1)
        assert type(obj).__name__ == name and type(obj).__module__ == module, opt
        if group == "f0":
            assert isinstance(obj, F0Estimator)
            assert (obj.f0_min, obj.f0_max) == (cfg.f0.f0_min, cfg.f0.f0_max), opt
        else:
            assert isinstance(obj, Embedder)
            assert obj.dim == cfg.embedder.dim and obj.version == cfg.embedder.version, opt


def test_demo_experiment_is_offline():
    cfg = compose("extract", ["experiment=demo"])
    assert cfg.name == "demo" and cfg.embedder._target_.endswith("SpectralEmbedder")
    assert "rmvpe" not in cfg.f0._target_.lower()


def test_paths_follow_root(tmp_path):
    cfg = compose("extract", [*BASE, f"paths.root={tmp_path}"])
    assert Path(cfg.paths.exp_dir) == tmp_path / "experiments" / "x"
