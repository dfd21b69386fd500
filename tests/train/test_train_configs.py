"""Every option of every group of the train config composes and instantiates."""

from __future__ import annotations

import lightning as L
import pytest
from hydra.utils import instantiate

from rvc.data.datamodule import RVCDataModule
from rvc.io.pretrained import PretrainedSource
from rvc.train.run import build_module
from tests.conftest import compose, options

BASE = ["name=x"]


@pytest.mark.parametrize("device", options("device"))
def test_device_presets_are_trainer_shaped(config, device):
    cfg = config("train", *BASE, f"device={device}")
    t = cfg.trainer
    assert (t.accelerator, t.devices, t.strategy, t.precision) == (
        cfg.device.accelerator, cfg.device.devices, cfg.device.strategy, cfg.device.precision,
    )  # fmt: skip
    assert cfg.device.precision in ("32-true", "bf16-mixed", "16-mixed")
    if device == "cpu":  # the only one this machine can build a Trainer for
        trainer = instantiate(t, max_epochs=1, logger=False, enable_checkpointing=False)
        assert isinstance(trainer, L.Trainer)
    expected = {"t4": "16-mixed", "l4": "bf16-mixed", "a100": "bf16-mixed", "bf16": "bf16-mixed"}
    if device in expected:
        assert cfg.device.precision == expected[device]
    assert cfg.device.tf32 == (device in ("tf32", "l4", "a100"))
    assert cfg.device.strategy.startswith("ddp") == (device == "multi_gpu")


@pytest.mark.parametrize("logger", options("logger"))
def test_logger_options_instantiate(config, tmp_path, logger, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    over = ["logger.wandb.name=x", "logger.wandb.tags=[a]"] if logger in ("wandb", "many") else []
    cfg = config("train", *BASE, f"logger={logger}", *over)
    built = [instantiate(v) for v in (cfg.logger or {}).values()]
    names = {type(b).__name__ for b in built}
    want = {"csv": {"CSVLogger"}, "tensorboard": {"TensorBoardLogger"}, "wandb": {"WandbLogger"},
            "many": {"CSVLogger", "TensorBoardLogger", "WandbLogger"}, "none": set()}  # fmt: skip
    assert names == want[logger]


def test_callbacks_instantiate(config, tmp_path):
    cfg = config("train", *BASE)
    built = {k: instantiate(v) for k, v in cfg.callbacks.items() if v is not None}
    assert cfg.callbacks.base_model is None  # experiment=pretrain_base turns it on
    assert {type(b).__name__ for b in built.values()} == {
        "EvaluationMetrics", "ModelCheckpoint", "EarlyStopping", "VoiceModelExport", "BuildIndex",
        "ProgressBar", "LearningRateMonitor",
    }  # fmt: skip
    # the score is logged through the module: the callbacks' order does not matter
    assert built["evaluation"].n_slices == cfg.val_audio_samples
    assert built["model_checkpoint"].monitor == built["early_stopping"].monitor == "val/mel"
    assert built["voice_model"].monitor == "val/mel" and built["voice_model"].mode == "min"
    assert built["model_checkpoint"].mode == built["early_stopping"].mode == "min"
    assert built["index"].out_path == tmp_path / "out" / "x.index"  # the config fixture's out_dir


@pytest.mark.parametrize("index", options("index"))
def test_index_options_build_the_callbacks_builder(config, index):
    cfg = config("train", *BASE, f"index={index}")
    builder = instantiate(cfg.callbacks.index).builder
    assert builder.kind == index


@pytest.mark.parametrize("option", options("pretrained"))
def test_pretrained_options_instantiate(config, option):
    extra = {
        "custom": ["pretrained.generator=/g.pth", "pretrained.discriminator=/d.pth"],
        "voice": ["pretrained.voice_model=/v.pth"],
    }.get(option, [])
    source = instantiate(config("train", *BASE, f"pretrained={option}", *extra).pretrained)
    assert isinstance(source, PretrainedSource)


@pytest.mark.parametrize("model", options("model"))
@pytest.mark.parametrize("vocoder", options("vocoder"))
def test_model_and_vocoder_build_a_module(config, model, vocoder):
    if model != "debug" and vocoder != "hifigan":
        pytest.skip("full sizes are built once, with hifigan")
    cfg = config("train", *BASE, f"model={model}", f"vocoder={vocoder}", "embedder=spectral")
    module = build_module(cfg)
    g = module.generator
    assert g.sample_rate == cfg.model.sample_rate and g.vocoder == cfg.vocoder.name
    opt_g, opt_d = module.configure_optimizers()[0]
    assert opt_g.defaults["lr"] == 1e-4 and tuple(opt_g.defaults["betas"]) == (0.8, 0.99)


def test_data_and_experiment_compose(tmp_path):
    cfg = compose("train", ["experiment=demo", f"out_dir={tmp_path}"])
    assert cfg.name == "demo" and cfg.model.sample_rate == 40000
    assert cfg.data._target_.endswith("RVCDataModule") and cfg.data.sample_rate == 40000
    dm = instantiate(cfg.data)
    assert isinstance(dm, RVCDataModule)
    # the same experiment file drives extract.py
    ex = compose("extract", ["experiment=demo"])
    assert ex.model.sample_rate == 40000 and ex.embedder.name == "spectral"


def test_slurm_launcher_composes(tmp_path):
    cfg = compose("train", [*BASE, f"out_dir={tmp_path}", "hydra/launcher=slurm"],
                  return_hydra_config=True)  # fmt: skip
    assert "submitit" in cfg.hydra.launcher._target_.lower()
    assert cfg.hydra.launcher.tasks_per_node == cfg.hydra.launcher.gpus_per_node


def test_ddp_knobs_reach_the_strategy(config):
    from lightning.pytorch.strategies import DDPStrategy

    from rvc.train.distributed import build_strategy
    from rvc.train.run import TrainError

    cfg = config("train", *BASE, "device=multi_gpu", "device.ddp_bucket_cap_mb=50")
    s = build_strategy(cfg.trainer.strategy, cfg.device)
    assert isinstance(s, DDPStrategy)
    # what Lightning hands to torch's DistributedDataParallel
    assert s._ddp_kwargs == {"find_unused_parameters": True, "bucket_cap_mb": 50.0}
    assert s._start_method == "popen"
    plain = config("train", *BASE, "device.strategy=ddp_spawn")
    s = build_strategy(plain.trainer.strategy, plain.device)
    assert s._ddp_kwargs == {} and s._start_method == "spawn"  # null: torch's 25 MB
    assert build_strategy("auto", cfg.device) == "auto"  # one device: nothing to build
    with pytest.raises(TrainError, match="ddp_bucket_cap_mb must be > 0"):
        build_strategy("ddp", config("train", *BASE, "device.ddp_bucket_cap_mb=0").device)
    with pytest.raises(TrainError, match="not a Lightning strategy"):
        build_strategy("ddp_bogus", cfg.device)


@pytest.mark.parametrize("device", options("device"))
def test_gpu_presets_pin_and_keep_loader_workers(config, device):
    cfg = config("train", *BASE, f"device={device}")
    gpu = cfg.device.accelerator == "gpu"
    assert cfg.data.pin_memory is gpu  # page-locked batches only help copies to a GPU
    assert cfg.data.num_workers == cfg.device.num_workers >= 2  # persistent (num_workers > 0)
