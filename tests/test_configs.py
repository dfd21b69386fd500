"""Every config group option composes into the real extract config and builds."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.utils import instantiate

from rvc.embedders.base import Embedder
from rvc.extract.ingest import SliceParams
from rvc.f0.base import F0Estimator
from rvc.utils.device import extract_devices
from tests.conftest import CONF_DIR, compose, options

BASE = ["name=x", "inputs=[a]"]


@pytest.mark.parametrize("device", options("device"))
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
    found = options(group)
    assert found, f"conf/{group} is empty"
    for opt in found:
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


def _own_leaves(node, prefix=""):
    for k, v in node.items():
        if isinstance(v, dict):
            yield from _own_leaves(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


@pytest.mark.parametrize("group", ["device"])
def test_inheriting_options_state_only_what_differs(group):
    """An option with `defaults: [_base, _self_]` repeats nothing its bases already say."""
    from omegaconf import OmegaConf

    from rvc import registry

    inheriting = 0
    for name in options(group):
        own = OmegaConf.to_container(OmegaConf.load(Path(CONF_DIR) / group / f"{name}.yaml"))
        bases = [d for d in own.pop("defaults", []) if d != "_self_"]
        if not bases:
            continue
        inheriting += 1
        parent = OmegaConf.merge(*(registry.load(group, b) for b in bases))
        for key, value in _own_leaves(own):
            assert OmegaConf.select(parent, key) != value, f"{group}/{name}: {key} repeats a base"
    assert inheriting == len(options(group))  # every preset inherits


def test_help_lists_options_without_shared_bases():
    import subprocess
    import sys

    root = Path(CONF_DIR).parents[1]
    out = subprocess.run([sys.executable, "train.py", "--help"], cwd=root, capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    lines = {ln.split(":")[0]: ln for ln in out.stdout.splitlines() if ": " in ln}
    assert lines["device"] == f"device: {', '.join(options('device'))}"
    groups = [ln for ln in out.stdout.split("== Config ==")[0].splitlines() if ": " in ln]
    assert "cpu" in options("device") and not [ln for ln in groups if ": _" in ln or ", _" in ln]
    assert lines["model"].startswith("model: 32k, 40k")
