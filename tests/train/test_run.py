"""train.py end to end on a tiny store (model=debug, CPU): outputs, checks, faults."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import faiss
import pytest
import torch

from rvc.io.voice_model import load_voice_model, read_voice_model
from rvc.models.synthesizer import Synthesizer
from rvc.train.run import TrainError, run
from tests.train.conftest import train_cfg

ROOT = Path(__file__).resolve().parents[2]


def _out(tmp_path: Path, store_root: Path, *overrides: str):
    return train_cfg(store_root, f"out_dir={tmp_path / 'run'}", *overrides)


def test_tiny_run_writes_a_voice_model_and_an_index(tmp_path, store_root):
    res = run(_out(tmp_path, store_root, "trainer.max_epochs=2"))
    assert res.epochs == 2 and res.steps > 0
    assert math.isfinite(res.metrics["val/mel"]) and "best/val/mel" in res.metrics
    # the voice model reloads, builds the network and loads with strict=True (less enc_q)
    vm = load_voice_model(res.voice_model)
    assert vm.sample_rate == 40000 and vm.use_f0 and vm.vocoder == "HiFi-GAN"
    assert vm.metadata["model_name"] == "t" and vm.metadata["embedder_model"] == "spectral"
    assert vm.metadata["epoch"] >= 1 and vm.metadata["dataset_length"] > 0
    net = Synthesizer(*vm.config, use_f0=True, text_enc_hidden_dim=768)
    missing, unexpected = net.load_state_dict(
        {k: v.float() for k, v in vm.synthesizer.state_dict().items()}, strict=False
    )
    assert not unexpected and all(k.startswith("enc_q.") for k in missing)
    # the index: faiss reads it, with the features' dimension and every training frame
    index = faiss.read_index(str(res.index))
    from rvc.data.store import FeatureStore

    store = FeatureStore(store_root / "experiments" / "t")
    frames = sum(len(store.load_features(r)) for r in store.slices.values())
    assert index.d == 768 and index.ntotal == frames
    # logs: the CSV has train and val metrics; media shows audio and pictures
    csv = next((tmp_path / "run" / "csv").rglob("metrics.csv")).read_text()
    assert "train/g/mel" in csv and "val/mel" in csv and "train/d/loss" in csv
    media = list((tmp_path / "run" / "media").rglob("*"))
    assert any(p.suffix == ".wav" for p in media) and any(p.name.endswith("_f0.png") for p in media)
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").exists()
    # steps are batches, as RVC counts them (Lightning's global_step counts D and G: 2 per batch)
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=False)
    batches = ckpt["loops"]["fit_loop"]["epoch_loop.batch_progress"]["total"]["completed"]
    assert ckpt["global_step"] == 2 * batches and res.steps == batches
    assert vm.metadata["step"] == batches
    assert not list((tmp_path / "run").rglob(".*.pth")) and not list(
        (tmp_path / "run").rglob(".*.index")
    )


def test_exported_model_reproduces_the_trained_generator(tmp_path, store_root):
    res = run(_out(tmp_path, store_root, "trainer.max_epochs=1", "callbacks.index=null"))
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=False)
    state = {k[len("gan.generator."):]: v for k, v in ckpt["state_dict"].items()
             if k.startswith("gan.generator.")}  # fmt: skip
    vm = load_voice_model(res.voice_model)
    trained = Synthesizer(*vm.config, use_f0=True).eval()
    trained.load_state_dict(state)
    phone, lengths = torch.randn(1, 30, 768), torch.tensor([30])
    pitch, pitchf = torch.full((1, 30), 80), torch.full((1, 30), 140.0)
    outs = []
    for net in (trained, vm.synthesizer):
        torch.manual_seed(0)
        outs.append(net.infer(phone, lengths, pitch, pitchf, 0)[0])
    # the file holds fp16 weights: equal up to that rounding
    assert torch.allclose(outs[0], outs[1], atol=2e-2)
    assert float((outs[0] - outs[1]).abs().mean()) < 2e-3


@pytest.mark.parametrize(
    "override,match",
    [
        ("model=32k", "40000 Hz slices"),
        ("embedder.dim=256", "spectral"),
        ("f0=harvest", "F0 from PMEstimator"),
        ("name=nothing", "no feature store"),
    ],
)
def test_store_and_config_mismatch_is_a_clear_error(tmp_path, store_root, override, match):
    with pytest.raises(TrainError, match=match):
        run(_out(tmp_path, store_root, override))


def test_unwritable_output_folder_is_a_clear_error(tmp_path, store_root):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(TrainError, match="not writable"):
        run(train_cfg(store_root, f"out_dir={blocker / 'run'}"))


def test_nan_loss_stops_clearly_and_keeps_the_last_good_files(tmp_path, store_root):
    run(_out(tmp_path, store_root, "trainer.max_epochs=1", "callbacks.index=null"))
    pth = tmp_path / "run" / "t.pth"
    good = read_voice_model(pth).metadata["model_hash"]
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    last_bytes = last.read_bytes()
    with pytest.raises(TrainError, match="NaN"):
        run(_out(tmp_path, store_root, "trainer.max_epochs=3", "optim.optimizer.lr=1e30",
                 "callbacks.index=null"))  # fmt: skip
    assert read_voice_model(pth).metadata["model_hash"] == good
    assert last.read_bytes() == last_bytes


def test_entry_point_error_is_one_line_without_traceback(tmp_path, store_root):
    p = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "name=absent", f"paths.root={tmp_path}",
         "pretrained=none"],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert p.returncode == 1 and "no feature store" in p.stderr and "Traceback" not in p.stderr


def test_auto_batch_size_takes_the_largest_power_of_two_that_fits(
    tmp_path, store_root, monkeypatch
):
    """`data.batch_size=auto` through Lightning's tuner: a step that runs out of memory above
    `fits` rows (the CUDA message, as on a GPU) leaves the largest power of two that fits."""
    from rvc.train.module import RVCModule

    fits, seen = 4, []
    step = RVCModule.training_step

    def oom_above(self, batch, batch_idx):
        seen.append(batch["phone"].shape[0])
        if seen[-1] > fits:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return step(self, batch, batch_idx)

    monkeypatch.setattr(RVCModule, "training_step", oom_above)
    res = run(_out(tmp_path, store_root, "data.batch_size=auto", "trainer.max_epochs=1",
                   "callbacks.index=null"))  # fmt: skip
    assert max(seen) > fits, "the tuner never tried a batch that does not fit"
    # the real epoch (after the last failed trial) ran with the batch the tuner kept
    last_fail = max(i for i, b in enumerate(seen) if b > fits)
    assert max(seen[last_fail + 1 :]) == fits and res.voice_model is not None
    assert not list((tmp_path / "run").rglob(".scale_batch_size_*"))


def test_full_disk_is_a_clear_error_and_keeps_the_previous_voice_model(
    tmp_path, store_root, monkeypatch
):
    import errno

    run(_out(tmp_path, store_root, "trainer.max_epochs=1", "callbacks.index=null"))
    pth = tmp_path / "run" / "t.pth"
    before = pth.read_bytes()
    real_save = torch.save

    def disk_full(obj, f, *a, **kw):  # half a file lands, then the disk is full
        if isinstance(f, (str, Path)):
            Path(f).write_bytes(b"\x80\x02partial")
            raise OSError(errno.ENOSPC, "No space left on device", str(f))
        return real_save(obj, f, *a, **kw)

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(TrainError, match="No space left on device"):
        run(_out(tmp_path, store_root, "trainer.max_epochs=2", "callbacks.index=null",
                 "ckpt_path=last"))  # fmt: skip
    assert pth.read_bytes() == before  # the old model is whole, no temp file is left behind
    assert not [p for p in (tmp_path / "run").rglob(".*") if p.is_file() and p.name != ".lock"]
