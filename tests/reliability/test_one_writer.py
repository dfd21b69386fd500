"""One writer per experiment folder: a second train.py / extract.py on it refuses, clearly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rvc.data.store import FeatureStore
from rvc.extract.run import ExtractError
from rvc.extract.run import run as extract
from rvc.train.run import TrainError, one_writer
from rvc.train.run import run as train
from tests.conftest import compose
from tests.data.lock_probe import locked_elsewhere
from tests.reliability.files import assert_every_file_loads
from tests.reliability.runs import assert_resumed_like_whole, wait_into_second_epoch
from tests.train.conftest import STORE_OPTIONS, train_cfg

ROOT = Path(__file__).resolve().parents[2]


def _is_locked(folder: Path) -> bool:
    """Whether some process holds `folder/.lock`, probed from another process: POSIX record
    locks never conflict within one process, and a probe here would drop this process's lock."""
    return locked_elsewhere(folder)


def test_a_second_training_run_on_the_folder_is_refused(tmp_path, store_root):
    out = tmp_path / "run"
    cfg = train_cfg(store_root, f"out_dir={out}", "trainer.max_epochs=1", "callbacks.index=null")
    with FeatureStore(out, read=False).lock():  # what a first run holds while it trains
        t0 = time.monotonic()
        refusal = rf"{out}: another run is writing this folder \(pid {os.getpid()}, this process"
        with pytest.raises(TrainError, match=refusal):
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


def _cmd(store_root: Path, out: Path, *overrides: str, workers: int = 0) -> list[str]:
    return [
        sys.executable, str(ROOT / "train.py"), "name=t", f"paths.root={store_root}",
        f"out_dir={out}", *STORE_OPTIONS, "pretrained=none", f"device.num_workers={workers}",
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
        assert f"(pid {first.pid}: {sys.executable} {ROOT / 'train.py'} name=t" in second.stderr
        assert "Traceback" not in second.stderr
        assert first.poll() is None  # the first run goes on, untouched
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert not _is_locked(out)  # kill -9 frees the lock: no stale lock to clean by hand


def _children(pid: int) -> list[int]:
    """The processes `pid` forked (its DataLoader workers), from /proc."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


@pytest.mark.slow
def test_a_rerun_right_after_kill_9_with_loader_workers_starts_and_resumes_exactly(
    tmp_path, store_root
):
    # the workers forked while the lock was held outlive a kill -9 of train.py for a while;
    # they must not keep the folder from the rerun
    opts = ["trainer.max_epochs=4", "data.batch_size=2", "callbacks.early_stopping=null",
            "callbacks.evaluation=null", "trainer.log_every_n_steps=1"]  # fmt: skip
    whole = tmp_path / "whole"
    subprocess.run(_cmd(store_root, whole, *opts, workers=2), check=True, capture_output=True,
                   cwd=tmp_path, timeout=300)  # fmt: skip

    killed = tmp_path / "killed"
    proc = subprocess.Popen(_cmd(store_root, killed, *opts, workers=2), cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    last = killed / "checkpoints" / "last.ckpt"
    workers: list[int] = []
    try:
        wait_into_second_epoch(proc, last)
        workers = _children(proc.pid)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait() == -9, "the run finished before it could be killed"
        assert len(workers) >= 2, "the run had no loader workers to orphan"
        # at once, no sleep: the orphans may still be alive, the rerun must start
        resumed = subprocess.run(_cmd(store_root, killed, *opts, "ckpt_path=last", workers=2),
                                 capture_output=True, text=True, cwd=tmp_path, timeout=300)  # fmt: skip
    finally:
        proc.kill()
        proc.wait()
        for pid in workers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert "another run is writing" not in resumed.stderr
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert_resumed_like_whole(whole, killed, last_epoch=3)
    assert assert_every_file_loads(killed)[".ckpt"] >= 1
    assert not _is_locked(killed)
