"""A run's life: plateau stop, kill and resume, fine-tuning, sweeps, W&B offline, DDP."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from rvc.io.voice_model import read_voice_model
from rvc.train.run import TrainError, build_module, run
from tests.reliability.files import assert_every_file_loads
from tests.reliability.runs import assert_resumed_like_whole, wait_into_second_epoch
from tests.train.conftest import STORE_OPTIONS, train_cfg

ROOT = Path(__file__).resolve().parents[2]


def _cmd(store_root: Path, out: Path | None, *overrides: str) -> list[str]:
    return [
        sys.executable, str(ROOT / "train.py"), "name=t", f"paths.root={store_root}",
        *([f"out_dir={out}"] if out else []), *STORE_OPTIONS, "pretrained=none", "device.num_workers=0",
        "callbacks.progress=null", "callbacks.evaluation=null", "trainer.enable_model_summary=false",
        "trainer.log_every_n_steps=1", *overrides,
    ]  # fmt: skip


def _weights(ckpt: Path) -> dict[str, torch.Tensor]:
    return torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]


def test_plateau_stops_a_flat_run(tmp_path, store_root):
    # nothing improves by 1000: the run stops after patience + 1 validations
    res = run(train_cfg(store_root, f"out_dir={tmp_path}", "trainer.max_epochs=20",
                        "callbacks.early_stopping.min_delta=1000",
                        "callbacks.early_stopping.patience=2", "callbacks.index=null"))  # fmt: skip
    assert res.epochs == 3


def test_max_epochs_auto_uses_the_audit(tmp_path, store_root):
    cfg = train_cfg(store_root, f"out_dir={tmp_path}", "trainer.max_epochs=auto")
    from rvc.train.run import _max_epochs, check_store

    audit = json.loads((store_root / "experiments" / "t" / "audit.json").read_text())
    assert _max_epochs(cfg, check_store(cfg)) == audit["recommendation"]["epochs"] > 0


def test_resume_after_kill_matches_an_uninterrupted_run(tmp_path, store_root):
    opts = ["trainer.max_epochs=4", "data.batch_size=2", "callbacks.index=null",
            "callbacks.early_stopping=null"]  # fmt: skip
    whole = tmp_path / "whole"
    subprocess.run(_cmd(store_root, whole, *opts), check=True, capture_output=True, cwd=tmp_path)

    # the killed run reads the store lazily: resumed, it still matches the in-memory run
    killed, opts = tmp_path / "killed", [*opts, "data.lazy=true"]
    proc = subprocess.Popen(_cmd(store_root, killed, *opts), cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    last = killed / "checkpoints" / "last.ckpt"
    wait_into_second_epoch(proc, last)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -9, "the run finished before it could be killed"
    # whatever the kill interrupted, the files that are there are whole
    killed_files = assert_every_file_loads(killed)
    assert killed_files[".ckpt"] >= 1 and killed_files[".pth"] == 1, killed_files
    torch.load(last, map_location="cpu", weights_only=False)
    read_voice_model(killed / "t.pth")
    resumed = subprocess.run(_cmd(store_root, killed, *opts, "ckpt_path=last"),
                             capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a = assert_resumed_like_whole(whole, killed, last_epoch=3)
    # the step in the .pth counts batches across the resume too, as the uninterrupted run's
    steps = [read_voice_model(d / "t.pth").metadata["step"] for d in (whole, killed)]
    assert steps[0] == steps[1] > 0 and steps[1] <= a["global_step"] // 2
    assert read_voice_model(killed / "t.pth").metadata["epoch"] >= 1
    assert assert_every_file_loads(killed)[".ckpt"] >= 1


def test_fine_tune_from_a_voice_model(tmp_path, store_root):
    first = run(train_cfg(store_root, f"out_dir={tmp_path / 'a'}", "trainer.max_epochs=1",
                          "callbacks.index=null"))  # fmt: skip
    voice = ["pretrained=voice", f"pretrained.voice_model={first.voice_model}",
             "pretrained.discriminator=none"]  # fmt: skip
    cfg = train_cfg(store_root, f"out_dir={tmp_path / 'b'}", "trainer.max_epochs=1",
                    "callbacks.index=null", *voice)  # fmt: skip
    module = build_module(cfg)
    source = instantiate(cfg.pretrained)
    source.load_into(module.gan.generator, module.gan.discriminator, vocoder="HiFi-GAN",
                     sample_rate=40000, use_f0=True, version="v2")  # fmt: skip
    vm = read_voice_model(first.voice_model)
    state = module.gan.generator.state_dict()
    for k, v in vm.weights.items():
        assert torch.equal(state[k], v.float()), k
    assert run(cfg).voice_model.exists()
    # a voice model of another vocoder is refused before training
    bad = train_cfg(store_root, f"out_dir={tmp_path / 'c'}", "vocoder=refinegan", *voice)
    with pytest.raises(TrainError, match="HiFi-GAN at 40000 Hz.*RefineGAN at 40000 Hz"):
        run(bad)


def test_wandb_offline_run_and_two_job_sweep(tmp_path, store_root):
    env = dict(os.environ, WANDB_MODE="offline", WANDB_DIR=str(tmp_path), WANDB_SILENT="true")
    sweep = tmp_path / "sweep"
    p = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "-m",
         *_cmd(store_root, None, "logger=wandb", "callbacks.index=null",
               f"hydra.sweep.dir={sweep}", "vocoder=hifigan,refinegan", "trainer.max_epochs=1")[2:]],
        capture_output=True, text=True, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr[-3000:]
    jobs = sorted(d.name for d in sweep.iterdir() if d.is_dir() and not d.name.startswith("."))
    assert len(jobs) == 2 and all("vocoder=" in j for j in jobs)
    for j in jobs:  # each job writes its own voice model in its own folder
        vm = read_voice_model(sweep / j / "t.pth")
        assert vm.vocoder == ("RefineGAN" if "refinegan" in j else "HiFi-GAN")
    runs = [next((sweep / j / "wandb").glob("offline-run-*")) for j in jobs]  # one per job
    for j, r in zip(jobs, runs, strict=True):
        blob = b"".join(f.read_bytes() for f in r.glob("*.wandb"))
        assert b"val/mel" in blob and b"train/g/mel" in blob  # metrics logged
        assert j.encode() in blob  # the run is named and tagged by its overrides
        assert b"t.pth" in blob  # the voice model went up as an artifact


@pytest.mark.slow
def test_two_process_ddp_on_cpu(tmp_path, store_root):
    # the multi_gpu preset's strategy (find_unused_parameters: D and G step apart) and a bucket
    # size, built into Lightning's DDPStrategy by rvc.train.distributed.build_strategy; G
    # checkpointed (non-reentrant checkpoints under DDP)
    p = subprocess.run(
        _cmd(store_root, tmp_path / "ddp", "trainer.max_epochs=1", "device.devices=2",
             "device.strategy=ddp_find_unused_parameters_true", "device.ddp_bucket_cap_mb=1",
             "model.checkpointing=true", "callbacks.index=null"),
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr[-3000:]
    assert "'bucket_cap_mb': 1.0" in p.stdout + p.stderr
    assert read_voice_model(tmp_path / "ddp" / "t.pth").metadata["step"] > 0


@pytest.mark.slow
def test_auto_batch_size_under_two_process_ddp(tmp_path, store_root):
    # Lightning's tuner refuses DDP: the launching process tunes on one device, both ranks train
    # with its number
    p = subprocess.run(
        _cmd(store_root, tmp_path / "ddp", "trainer.max_epochs=1", "device.devices=2",
             "device.strategy=ddp_find_unused_parameters_true", "data.batch_size=auto",
             "callbacks.index=null"),
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr[-3000:]
    out = p.stdout + p.stderr
    tuned = re.findall(r"data\.batch_size=auto: (\d+)$", out, re.M)  # the launching process
    handed = re.findall(r"data\.batch_size=auto: (\d+) \(tuned on one device", out)  # rank 1
    assert len(tuned) == 1 and handed == tuned, out[-3000:]
