"""One writer per experiment folder: `<folder>/.lock`, held by the process that took it alone.

A POSIX record lock (fcntl F_SETLK), not flock: a flock belongs to the open file, which forked
children (DataLoader workers, ...) share, so after kill -9 of train.py its orphaned workers kept
the folder locked until they died. A record lock belongs to a process: the kernel drops it when
that process ends, whatever its children do, and a forked child does not get it.

Two POSIX rules the code works around:
- record locks never conflict within one process, so a registry of the folders this process
  holds refuses a second writer in the same process;
- closing ANY descriptor of the file drops the process's lock, so while a folder is held this
  process never opens its lock file again (`lock_holder` asks the registry first).

The holder writes its pid and command line into the file for people reading it; a refusal names
the holder the kernel reports (F_GETLK), so stale content left by a killed run never misleads.
"""

from __future__ import annotations

import contextlib
import errno
import os
import struct
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rvc.errors import RVCError

try:
    import fcntl
except ImportError:  # Windows: no POSIX locks; the in-process registry still refuses
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".lock"
_CMD_CHARS = 300  # a refusal shows this much of the holder's command line
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)  # an exec'd program has no use for the descriptor

_mutex = threading.Lock()  # guards _held and every open/close of a lock file in this process
_held: dict[tuple[int, int], int] = {}  # (st_dev, st_ino) of a held folder -> its lock fd


class StoreLockedError(RVCError, RuntimeError):
    """Another process (or another writer in this one) holds the folder's lock."""

    def __init__(self, folder: Path, holder: Holder | None):
        self.folder, self.holder = folder, holder
        super().__init__(f"{folder}: another run is writing this store ({describe(holder)})")


@dataclass(frozen=True)
class Holder:
    """The process holding a folder's lock."""

    pid: int  # 0: a process the kernel cannot name here (another pid namespace)
    command: str  # its command line, "" when unknown


def describe(holder: Holder | None) -> str:
    """How a refusal names the holder."""
    if holder is None:
        return "a process that has just released it; try again"
    if holder.pid == 0:
        return "a process in another container or pid namespace"
    me = ", this process" if holder.pid == os.getpid() else ""
    return f"pid {holder.pid}{me}: {holder.command or 'command unknown'}"


@contextlib.contextmanager
def hold(folder: Path) -> Iterator[None]:
    """Hold `folder` for one writer; a second one (any process, this one too) gets
    StoreLockedError naming the holder. Freed on exit, and by the kernel on kill -9."""
    folder.mkdir(parents=True, exist_ok=True)
    with _mutex:
        key = _key(folder)
        if key in _held:
            raise StoreLockedError(folder, Holder(os.getpid(), _command(os.getpid())))
        fd = _take(folder)
        _held[key] = fd
    try:
        yield
    finally:
        with _mutex:
            if _held.get(key) == fd:  # not in a forked child, which never held it
                del _held[key]
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, 0)  # a clean exit leaves no holder named in the file
                os.close(fd)  # drops the lock


def lock_holder(folder: Path) -> Holder | None:
    """Who holds `folder`'s lock now, or None when it is free."""
    with _mutex:
        with contextlib.suppress(FileNotFoundError):
            if _key(folder) in _held:
                return Holder(os.getpid(), _command(os.getpid()))
        if fcntl is None:
            return None
        try:
            fd = os.open(folder / LOCK_FILE, os.O_RDONLY | _CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            return _kernel_holder(fd)
        finally:
            os.close(fd)  # this process holds no lock on it, so closing drops nothing


def _take(folder: Path) -> int:
    """Open and lock `folder/.lock` (without truncating: that would erase the holder's name)."""
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT | _CLOEXEC, 0o644)
    if fcntl is None:
        return fd
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # F_SETLK on the whole file
    except OSError as e:
        holder = _kernel_holder(fd) if e.errno in (errno.EACCES, errno.EAGAIN) else None
        os.close(fd)
        if e.errno not in (errno.EACCES, errno.EAGAIN):
            raise
        raise StoreLockedError(folder, holder) from e
    # advisory only (the kernel's record is the truth), so it need not be an atomic write:
    # replacing the file would give a new inode that a second run would lock separately
    info = f"{os.getpid()}\n{_command(os.getpid())}\n".encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, info, 0)
    return fd


# struct flock on 64-bit Linux: l_type, l_whence (short), l_start, l_len (off_t), l_pid (pid_t)
_FLOCK = struct.Struct("hhqqi4x")
_KERNEL_PID = sys.platform.startswith("linux") and struct.calcsize("P") == 8


def _kernel_holder(fd: int) -> Holder | None:
    """The holder as the kernel reports it (F_GETLK), else as the lock file says."""
    if not _KERNEL_PID:
        return _file_holder(fd)
    query = _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
    l_type, _, _, _, pid = _FLOCK.unpack(fcntl.fcntl(fd, fcntl.F_GETLK, query))
    if l_type == fcntl.F_UNLCK:
        return None
    if pid == 0:
        return Holder(0, "")
    command = _command(pid)
    if not command:  # no /proc: the file's word, if it is this holder's (not a dead one's)
        named = _file_holder(fd)
        command = named.command if named and named.pid == pid else ""
    return Holder(pid, command)


def _file_holder(fd: int) -> Holder | None:
    """The pid and command the holder wrote into the file, when that pid is alive."""
    lines = os.pread(fd, 4096, 0).decode(errors="replace").splitlines()
    if not lines or not lines[0].strip().isdigit():
        return None
    pid = int(lines[0])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None  # written by a run that is gone
    except PermissionError:
        pass  # alive, someone else's
    return Holder(pid, lines[1] if len(lines) > 1 else "")


def _command(pid: int) -> str:
    """A process's command line from /proc ("" where there is none)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return " ".join(sys.argv) if pid == os.getpid() else ""
    text = raw.rstrip(b"\0").replace(b"\0", b" ").replace(b"\n", b" ").decode(errors="replace")
    return text if len(text) <= _CMD_CHARS else text[: _CMD_CHARS - 3] + "..."


def _key(folder: Path) -> tuple[int, int]:
    """The folder's identity, the same through any path or symlink to it."""
    st = os.stat(folder)
    return st.st_dev, st.st_ino


def _forget_parents_locks() -> None:
    """In a forked child: the parent's locks are not ours (POSIX), so its registry is not."""
    global _mutex
    _mutex = threading.Lock()  # another thread may have held it at the fork
    for fd in _held.values():
        with contextlib.suppress(OSError):
            os.close(fd)  # closing in the child leaves the parent's lock in place
    _held.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_parents_locks)
