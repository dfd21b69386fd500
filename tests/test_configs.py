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
_ABSENT = object()  # a key no base has


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


@pytest.mark.parametrize("group", ["device", "f0", "embedder"])
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
            inherited = OmegaConf.select(parent, key, default=_ABSENT, throw_on_missing=False)
            assert inherited != value, f"{group}/{name}: {key} repeats a base"
    assert inheriting == len(options(group))  # every option inherits


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


# every option of every group, through the config that uses it (slicing: extract's, effects:
# infer's; else train's)
_APP = {"slicing": "extract", "effects": "infer"}
_EXTRA = {  # required values (`???`) an option leaves to the command line
    ("embedder", "custom"): ["embedder.local_path=/nonexistent"],
    ("pretrained", "custom"): ["pretrained.generator=/g.pth", "pretrained.discriminator=/d.pth"],
    ("pretrained", "voice"): ["pretrained.voice_model=/v.pth"],
    ("experiment", "finetune_voice"): ["pretrained.voice_model=/v.pth"],
}
_GLOBAL = {"experiment", "debug", "hparams_search"}  # `# @package _global_` groups


def _every_option() -> list[tuple[str, str]]:
    from rvc import registry

    return [(g, o) for g in registry.groups() for o in options(g)]


@pytest.mark.parametrize("group,option", _every_option())
def test_every_option_of_every_group_composes_and_resolves(tmp_path, group, option):
    from omegaconf import OmegaConf, open_dict

    from rvc import registry

    app = _APP.get(group, "train")
    extra = [*_EXTRA.get((group, option), []), *([f"out_dir={tmp_path}"] if app == "train" else [])]
    inputs = {"extract": BASE[1:], "infer": ["voice=/v.pth", "input=a.wav"]}.get(app, [])
    name = "+name=x" if app == "infer" else "name=x"  # infer's runs have no name
    cfg = compose(app, [name, *inputs, f"{group}={option}", *extra], return_hydra_config=True)
    from hydra.core.hydra_config import HydraConfig

    HydraConfig.instance().set_config(cfg)  # `${hydra:...}` resolves as in a run (W&B's name)
    try:
        with open_dict(cfg):
            del cfg["hydra"]
        resolved = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    finally:
        HydraConfig.instance().cfg = None
    assert resolved["name"] == "x"
    if group not in _GLOBAL:  # Hydra's node is the registry's: one definition of each option
        node = registry.load(group, option)
        for over in _EXTRA.get((group, option), []):  # the command line's values, as Hydra's
            key, value = over.split("=", 1)
            OmegaConf.update(node, key.split(".", 1)[1], value)
        assert OmegaConf.to_container(cfg[group]) == OmegaConf.to_container(node)
    if group in ("experiment", "debug"):  # recipes for both entry points (debug: train only)
        if group == "experiment":
            ex = compose("extract", ["name=x", *BASE[1:], f"experiment={option}", *extra[:-1]])
            assert ex.model.sample_rate == cfg.model.sample_rate and ex.f0 == cfg.f0


def test_experiments_cover_the_readme_cases(tmp_path):
    cases = {"speech_40k": (40000, "HiFi-GAN", "RMVPEEstimator"),
             "singing_48k_rmvpe": (48000, "HiFi-GAN", "RMVPEEstimator"),
             "refinegan_32k": (32000, "RefineGAN", "RMVPEEstimator"),
             "demo": (40000, "HiFi-GAN", "FCPEEstimator")}  # fmt: skip
    assert set(cases) | {"finetune_voice", "a100_bf16"} <= set(options("experiment"))
    for name, (rate, vocoder, f0) in cases.items():
        cfg = compose("train", [f"experiment={name}", f"out_dir={tmp_path}", "name=x"])
        assert (cfg.model.sample_rate, cfg.vocoder.name) == (rate, vocoder), name
        assert cfg.f0._target_.endswith(f0), name
    tune = compose("train", ["experiment=finetune_voice", "name=x", f"out_dir={tmp_path}"])
    assert tune.pretrained._target_.endswith("VoiceModelPretrained")
    assert tune.optim.optimizer.lr < compose("train", ["name=x"]).optim.optimizer.lr
    a100 = compose("train", ["experiment=a100_bf16", "name=x", f"out_dir={tmp_path}"])
    assert a100.trainer.precision == "bf16-mixed" and a100.device.tf32 and a100.device.fast_step


@pytest.mark.parametrize(
    "option,want",
    [("fdr", {"fast_dev_run": True}), ("overfit", {"overfit_batches": 3, "max_epochs": 20}),
     ("limit", {"limit_train_batches": 4, "limit_val_batches": 2, "max_epochs": 3}),
     ("profiler", {"max_epochs": 1})],
)  # fmt: skip
def test_debug_options_build_their_trainer(tmp_path, option, want):
    import lightning as L
    from hydra.utils import instantiate

    cfg = compose("train", ["name=x", f"out_dir={tmp_path}", f"debug={option}"])
    assert {k: cfg.trainer[k] for k in want} == want and cfg.data.num_workers == 0
    trainer = instantiate(cfg.trainer, logger=False, enable_checkpointing=False)
    assert isinstance(trainer, L.Trainer)
    if option == "fdr":
        assert trainer.fast_dev_run == 1
    if option == "profiler":
        assert type(trainer.profiler).__name__ == "SimpleProfiler"
    if option == "overfit":
        assert cfg.callbacks.early_stopping is None
