"""Helpers for tests that kill a training run mid-way: wait until it is into its second epoch."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import torch


def epoch_of(ckpt: Path) -> int:
    """The epoch a Lightning checkpoint was saved at; -1 while it is being replaced."""
    try:
        return int(torch.load(ckpt, map_location="cpu", weights_only=False)["epoch"])
    except Exception:  # being replaced right now
        return -1


def wait_into_second_epoch(proc: subprocess.Popen, last: Path, timeout: float = 240) -> None:
    """Return once `last` (last.ckpt) is from epoch 1 or later, a little into the next epoch:
    a kill then lands mid-epoch, after checkpoints and a voice model exist."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if last.exists() and epoch_of(last) >= 1:
            break
        time.sleep(0.05)
    time.sleep(0.3)  # into the next epoch


def assert_resumed_like_whole(whole: Path, resumed: Path, last_epoch: int) -> dict:
    """The resumed run's last.ckpt equals the uninterrupted run's: step, epoch and every weight
    bit for bit. Returns the uninterrupted run's checkpoint."""
    a = torch.load(whole / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    b = torch.load(resumed / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert a["global_step"] == b["global_step"] and a["epoch"] == b["epoch"] == last_epoch
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    return a
