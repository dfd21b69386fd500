"""The store's training arrays packed into four large files, for network filesystems.

A corpus of hundreds of hours is tens of thousands of slices, four files each; on NFS or a
parallel filesystem every open is a round trip, and listing them at start-up takes minutes.
Packed, a store is `packed/{wave.f32, f0.f32, f0c.i16, feats.f16}` (every usable slice's
frames end to end) plus `index.json` (where each slice starts, its frames and speaker). A
window is four positioned reads (`os.pread`) on files each worker opens once; nothing is
memory-mapped, so resident memory does not grow with what was read.

Our own flat files rather than webdataset or litdata shards: those stream samples in order,
while training reads a random crop of a random slice, which is one offset away here.
`index.json` is written last and names what it was packed from (slices and their hashes, stage
configs, hop): a store that changed since is packed again.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from rvc.data.items import DataReadError, Item, slice_frames
from rvc.data.store import FeatureStore, SliceRecord, config_hash
from rvc.utils import atomic

PACKED = "packed"
ARRAYS = {"wave": np.float32, "f0": np.float32, "f0c": np.int16, "feats": np.float16}


def pack_key(store: FeatureStore, recs: list[SliceRecord], hop: int) -> str:
    """What a pack was made from: a changed slice, speaker, stage config or rate: a new key."""
    stages = {s: store.stages.get(s, {}).get("hash") for s in ("f0", "features")}
    slices = [(r.name, r.sha, r.speaker) for r in recs]
    return config_hash({"slices": slices, "stages": stages, "hop": hop})


def current_pack(store: FeatureStore, recs: list[SliceRecord], hop: int) -> dict | None:
    """The pack's index if one was made from exactly these slices, else None."""
    path = store.root / PACKED / pack_key(store, recs, hop) / "index.json"
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


@contextlib.contextmanager
def _packing_lock(folder: Path) -> Iterator[None]:
    """One packer per store at a time (jobs of a sweep may start together)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a") as f:
        try:
            import fcntl
        except ImportError:  # Windows: one machine, one job at a time is the user's to keep
            yield
            return
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def pack(store: FeatureStore, recs: list[SliceRecord], hop: int, progress: bool = True) -> dict:
    """Pack `recs` (sorted by name) into `<store>/packed/<key>/`; returns the index.

    Each pack has its own folder, named by what it was made from: a run still reading an older
    pack never sees its files rewritten (older packs are removed; open files stay readable)."""
    root = store.root / PACKED
    with _packing_lock(root):
        index = current_pack(store, recs, hop)  # another job may have packed while we waited
        if index is None:
            index = _write_pack(store, recs, hop, root / pack_key(store, recs, hop), progress)
        for old in root.iterdir():
            if old.is_dir() and old.name != index["key"]:
                shutil.rmtree(old, ignore_errors=True)
    return index


def _write_pack(
    store: FeatureStore, recs: list[SliceRecord], hop: int, folder: Path, progress: bool
) -> dict:
    from tqdm.auto import tqdm

    folder.mkdir(parents=True, exist_ok=True)
    slices, frame_at, feat_at, dim = {}, 0, 0, None
    tmp = {k: tempfile.mkstemp(dir=folder, prefix=f".{k}.") for k in ARRAYS}
    files = {k: os.fdopen(fd, "wb") for k, (fd, _) in tmp.items()}
    try:
        for rec in tqdm(recs, desc="    pack", unit="slice", disable=not progress):
            n = slice_frames(store, rec, hop)
            wave, _ = sf.read(store.path("sliced", rec), dtype="float32", frames=n * hop)
            feats = np.load(store.path("features", rec))[: (n + 1) // 2].astype(np.float16)
            dim = feats.shape[1]
            parts = {
                "wave": wave,
                "f0": np.load(store.path("f0", rec))[:n].astype(np.float32),
                "f0c": np.load(store.path("f0c", rec))[:n].astype(np.int16),
                "feats": feats,
            }
            # a short file would shift every later slice's offsets: refuse it here
            if [len(parts[k]) for k in ARRAYS] != [n * hop, n, n, (n + 1) // 2]:
                raise DataReadError(
                    f"{store.path('sliced', rec)} (or its F0/features): shorter than the "
                    "store says; re-run extract.py"
                )
            for k, arr in parts.items():
                files[k].write(np.ascontiguousarray(arr, ARRAYS[k]).tobytes())
            slices[rec.name] = [frame_at, feat_at, n, rec.speaker]
            frame_at, feat_at = frame_at + n, feat_at + len(feats)
    except BaseException:
        for k, (_, path) in tmp.items():
            files[k].close()
            Path(path).unlink(missing_ok=True)
        raise
    for k, (_, path) in tmp.items():
        files[k].close()
        os.replace(path, folder / f"{k}.{np.dtype(ARRAYS[k]).str[1:]}")
    index = {"key": folder.name, "hop": hop, "dim": dim, "slices": slices}
    atomic.write_json(folder / "index.json", index)  # last: what makes the pack current
    return index


class PackedReader:
    """Windows of packed slices; each process opens the files once (forked loader workers
    share the parent's: positioned reads move no shared offset)."""

    def __init__(self, root: str | Path, index: dict):
        self.folder = Path(root) / PACKED / index["key"]
        self.hop, self.dim, self.slices = index["hop"], index["dim"], index["slices"]
        self._files: dict[str, Any] = {}

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_files": {}}  # open files stay in their process

    def _read(self, kind: str, at: int, count: int, width: int = 1) -> np.ndarray:
        dtype = np.dtype(ARRAYS[kind])
        if kind not in self._files:
            try:
                self._files[kind] = open(self.folder / f"{kind}.{dtype.str[1:]}", "rb", buffering=0)  # noqa: SIM115
            except FileNotFoundError as e:
                raise DataReadError(
                    f"{self.folder}: the packed store was replaced under this run (the store "
                    "changed); restart training"
                ) from e
        f, out = self._files[kind], np.empty((count, width) if width > 1 else count, dtype)
        view, offset, got = memoryview(out).cast("B"), at * width * dtype.itemsize, 0
        while got < len(view):  # reads may come back short: loop until the window is whole
            if hasattr(os, "preadv"):
                n = os.preadv(f.fileno(), [view[got:]], offset + got)
            else:  # Windows: no positioned reads; its workers are spawned, each with its files
                f.seek(offset + got)
                n = f.readinto(view[got:])
            if not n:
                raise DataReadError(f"{self.folder}: {kind} is shorter than its index; re-pack")
            got += n
        return out

    def window(self, name: str, start: int, n: int) -> Item:
        """Frames [start, start + n) of slice `name`; `start` even (features are 20 ms)."""
        frame_at, feat_at, _, speaker = self.slices[name]
        first, rows = start // 2, (start + n + 1) // 2 - start // 2
        return Item(
            self._read("feats", feat_at + first, rows, self.dim),
            self._read("f0c", frame_at + start, n),
            self._read("f0", frame_at + start, n),
            self._read("wave", (frame_at + start) * self.hop, n * self.hop),
            int(speaker),
        )
