"""The writer lock belongs to the process that took it: not to its forked children, not to a
dead holder's leftovers, and never twice in one process."""

from __future__ import annotations

import os
import signal
import time

import pytest

from rvc.data.writer_lock import StoreLockedError, hold, lock_holder
from tests.data.lock_probe import locked_elsewhere, start_holder


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0): only a running process counts
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_a_forked_child_outliving_its_parent_does_not_hold_the_lock(tmp_path):
    # what kill -9 of train.py leaves: DataLoader workers forked while the lock was held
    parent, child = start_holder(tmp_path, "fork")
    try:
        assert child > 0 and locked_elsewhere(tmp_path)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        assert _alive(child)  # the orphan goes on...
        assert not locked_elsewhere(tmp_path)  # ...without the lock, at once
        assert lock_holder(tmp_path) is None
        with hold(tmp_path):  # a rerun takes it with no wait
            assert locked_elsewhere(tmp_path)
        assert _alive(child)
    finally:
        parent.kill()
        parent.wait()
        os.kill(child, signal.SIGKILL)
    assert not locked_elsewhere(tmp_path)


def test_the_refusal_names_the_live_holder(tmp_path):
    proc, _ = start_holder(tmp_path, "--marker-of-the-first-run")
    try:
        holder = lock_holder(tmp_path)
        assert holder is not None and holder.pid == proc.pid
        assert "--marker-of-the-first-run" in holder.command
        with pytest.raises(StoreLockedError, match=rf"pid {proc.pid}: .*--marker-of-the-first-run"):
            with hold(tmp_path):
                pass
        assert locked_elsewhere(tmp_path)  # the refused attempt left the holder's lock alone
    finally:
        proc.kill()
        proc.wait()
    with hold(tmp_path):
        pass


def test_stale_content_from_a_dead_holder_does_not_confuse_it(tmp_path):
    dead = os.fork()
    if dead == 0:
        os._exit(0)
    os.waitpid(dead, 0)
    (tmp_path / ".lock").write_text(f"{dead}\nold-train.py --stale\n")  # a killed run's words
    assert lock_holder(tmp_path) is None  # the words alone hold nothing
    # a new holder that has not yet written its own name: the kernel's word counts
    proc, _ = start_holder(tmp_path, raw=True)
    try:
        with pytest.raises(StoreLockedError, match=rf"pid {proc.pid}: ") as err:
            with hold(tmp_path):
                pass
        assert "--stale" not in str(err.value) and err.value.holder.pid == proc.pid
    finally:
        proc.kill()
        proc.wait()
    with hold(tmp_path):  # free again; the holder's own name replaces the stale one
        assert (tmp_path / ".lock").read_text().split("\n")[0] == str(os.getpid())
    assert (tmp_path / ".lock").read_text() == ""  # a clean release names nobody


def test_a_second_writer_in_the_same_process_is_refused_and_leaves_the_first_alone(tmp_path):
    with hold(tmp_path):
        with pytest.raises(StoreLockedError, match=rf"pid {os.getpid()}, this process"):
            with hold(tmp_path / "." / ""):  # the same folder by another spelling
                pass
        assert lock_holder(tmp_path).pid == os.getpid()
        # neither the refusal nor the probe closed a descriptor of the file: still held
        assert locked_elsewhere(tmp_path)
    assert not locked_elsewhere(tmp_path)  # and released at the end
    with hold(tmp_path):  # and free for this process again
        pass


def test_a_forked_child_of_a_holder_is_refused_by_the_kernel_not_its_memory(tmp_path):
    # the child inherits the parent's registry in memory, but not its lock: it must neither
    # think it holds the folder nor be able to take it while the parent does
    with hold(tmp_path):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                with hold(tmp_path):
                    code = 1
            except StoreLockedError as e:
                code = 0 if e.holder is not None and e.holder.pid == os.getppid() else 2
            os.write(w, bytes([code]))
            os._exit(0)
        os.close(w)
        got = os.read(r, 1)
        os.waitpid(pid, 0)
        assert got == b"\0", f"the child got code {got!r}"
        assert locked_elsewhere(tmp_path)  # the child's exit left the parent's lock alone
    t0 = time.monotonic()
    assert not locked_elsewhere(tmp_path)
    assert time.monotonic() - t0 < 30
