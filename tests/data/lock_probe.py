"""Probes of a folder's writer lock from other processes.

POSIX record locks never conflict within one process, and closing any descriptor of the file
drops the process's lock, so a probe in the process under test could neither see its lock nor
leave it alone: these probe from a fresh process, with plain fcntl (not the code under test).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_PROBE = """
import fcntl, os, sys
try:
    fd = os.open(sys.argv[1], os.O_RDWR)
except FileNotFoundError:
    sys.exit(0)
try:
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
except OSError:
    sys.exit(1)
"""


def locked_elsewhere(folder: Path) -> bool:
    """Whether some process holds `folder/.lock`, as another process sees it."""
    probe = subprocess.run([sys.executable, "-c", _PROBE, str(folder / ".lock")], timeout=60)
    return probe.returncode == 1


def start_holder(folder: Path, *args: str, raw: bool = False) -> tuple[subprocess.Popen, int]:
    """A process holding `folder`'s lock (and the pid of its forked child, or 0); `raw`: taken
    with a bare lockf that names nobody in the file (a holder caught before it names itself)."""
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.data.lock_probe", "raw" if raw else "hold", str(folder),
         *args],
        stdout=subprocess.PIPE, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    line = proc.stdout.readline().split()
    assert line[:1] == ["ready"], f"the holder did not start (rc {proc.poll()})"
    return proc, int(line[1])


def _hold(folder: Path, args: list[str]) -> None:
    """Take the lock with rvc's code; with "fork", leave a child that sleeps (a loader worker)."""
    from rvc.data.writer_lock import hold

    with hold(folder):
        child = os.fork() if "fork" in args else None
        if child == 0:
            time.sleep(60)
            os._exit(0)
        print("ready", child or 0, flush=True)
        time.sleep(60)


def _hold_raw(folder: Path) -> None:
    import fcntl

    fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT)
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    print("ready 0", flush=True)
    time.sleep(60)


if __name__ == "__main__":
    if sys.argv[1] == "raw":
        _hold_raw(Path(sys.argv[2]))
    else:
        _hold(Path(sys.argv[2]), sys.argv[3:])
