"""One writer per experiment folder: a second train.py / extract.py on it refuses, clearly."""

from __future__ import annotations

import fcntl
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rvc.data.store import FeatureStore
from rvc.extract.pipeline import ExtractError
from rvc.extract.pipeline import run as extract
from rvc.train.run import TrainError, one_writer
from rvc.train.run import run as train
from tests.conftest import compose
from tests.train.conftest import STORE_OPTIONS, train_cfg

ROOT = Path(__file__).resolve().parents[2]


def _is_locked(folder: Path) -> bool:
    """Whether some other open file holds `folder/.lock` (the store's flock)."""
    if not (folder / ".lock").exists():
        return False
    with open(folder / ".lock", "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
        return False


def test_a_second_training_run_on_the_folder_is_refused(tmp_path, store_root):
    out = tmp_path / "run"
    cfg = train_cfg(store_root, f"out_dir={out}", "trainer.max_epochs=1", "callbacks.index=null")
    with FeatureStore(out, read=False).lock():  # what a first run holds while it trains
        t0 = time.monotonic()
        with pytest.raises(TrainError, match=rf"{out}: another run is writing this folder"):
            train(cfg)
        assert time.monotonic() - t0 < 10  # refused up front, not after building the model
    assert not (out / "checkpoints").exists()  # the refused run wrote nothing
    assert not _is_locked(out)
    res = train(cfg)  # free again: the same config runs
    assert res.voice_model is not None and res.voice_model.is_file()
    assert not _is_locked(out)  # released at the end


def test_training_and_extraction_exclude_each_other_on_the_store(tmp_path, store_root):
    store = store_root / "experiments" / "t"
    with FeatureStore(store, read=False).lock():  # an extract.py writing the store
        # train_cfg's out_dir is the store folder, as train.py's default
        with pytest.raises(TrainError, match="another run is writing"):
            train(train_cfg(store_root, "trainer.max_epochs=1", "callbacks.index=null"))
    with one_writer(store):  # a train.py writing into the store folder
        with pytest.raises(ExtractError, match="another run is writing this store"):
            extract(compose("extract", ["name=t", f"paths.root={store_root}",
                                        f"inputs=[{tmp_path}]", *STORE_OPTIONS]))  # fmt: skip


def test_ranks_of_a_distributed_run_share_rank_0s_lock(tmp_path, monkeypatch):
    with one_writer(tmp_path):
        monkeypatch.setenv("LOCAL_RANK", "1")  # a DDP child re-running train.py
        with one_writer(tmp_path):
            pass
        monkeypatch.setenv("LOCAL_RANK", "0")
        with pytest.raises(TrainError, match="another run"):
            with one_writer(tmp_path):
                pass


def _cmd(store_root: Path, out: Path, *overrides: str) -> list[str]:
    return [
        sys.executable, str(ROOT / "train.py"), "name=t", f"paths.root={store_root}",
        f"out_dir={out}", *STORE_OPTIONS, "pretrained=none", "device.num_workers=0",
        "callbacks.progress=null", "callbacks.index=null", "trainer.enable_model_summary=false",
        *overrides,
    ]  # fmt: skip


def test_two_train_processes_on_one_folder(tmp_path, store_root):
    out = tmp_path / "shared"
    first = subprocess.Popen(_cmd(store_root, out, "trainer.max_epochs=1000"), cwd=tmp_path,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.time() + 120
        while not _is_locked(out) and first.poll() is None and time.time() < deadline:
            time.sleep(0.1)
        assert _is_locked(out), "the first run never took the folder's lock"
        second = subprocess.run(_cmd(store_root, out, "trainer.max_epochs=1"), cwd=tmp_path,
                                capture_output=True, text=True, timeout=120)  # fmt: skip
        assert second.returncode == 1, second.stderr[-2000:]
        assert f"error: {out}: another run is writing this folder" in second.stderr
        assert "Traceback" not in second.stderr
        assert first.poll() is None  # the first run goes on, untouched
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert not _is_locked(out)  # kill -9 frees the lock: no stale lock to clean by hand
