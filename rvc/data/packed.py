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

import json
import os
from pathlib import Path

import numpy as np
import soundfile as sf

from rvc.data.items import Item, slice_frames
from rvc.data.store import FeatureStore, SliceRecord, config_hash
from rvc.utils import atomic

PACKED = "packed"
ARRAYS = {"wave": np.float32, "f0": np.float32, "f0c": np.int16, "feats": np.float16}


def pack_key(store: FeatureStore, recs: list[SliceRecord], hop: int) -> str:
    """What a pack was made from: a changed slice, stage config or rate makes a new key."""
    stages = {s: store.stages.get(s, {}).get("hash") for s in ("f0", "features")}
    return config_hash({"slices": [(r.name, r.sha) for r in recs], "stages": stages, "hop": hop})


def current_pack(store: FeatureStore, recs: list[SliceRecord], hop: int) -> dict | None:
    """The pack's index if it was made from exactly these slices, else None."""
    path = store.root / PACKED / "index.json"
    try:
        index = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return index if index.get("key") == pack_key(store, recs, hop) else None


def pack(store: FeatureStore, recs: list[SliceRecord], hop: int, progress: bool = True) -> dict:
    """Pack `recs` (sorted by name) into `<store>/packed/`; returns the index."""
    from tqdm.auto import tqdm

    folder = store.root / PACKED
    folder.mkdir(exist_ok=True)
    (folder / "index.json").unlink(missing_ok=True)  # a half-rewritten pack is never current
    slices, frame_at, feat_at, dim = {}, 0, 0, None
    files = {k: open(folder / f".{k}.tmp", "wb") for k in ARRAYS}  # noqa: SIM115
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
            for k, arr in parts.items():
                files[k].write(np.ascontiguousarray(arr, ARRAYS[k]).tobytes())
            slices[rec.name] = [frame_at, feat_at, n, rec.speaker]
            frame_at, feat_at = frame_at + n, feat_at + len(feats)
    finally:
        for f in files.values():
            f.close()
    for k in ARRAYS:
        os.replace(folder / f".{k}.tmp", folder / f"{k}.{np.dtype(ARRAYS[k]).str[1:]}")
    index = {"key": pack_key(store, recs, hop), "hop": hop, "dim": dim, "slices": slices}
    atomic.write_json(folder / "index.json", index)
    return index


class PackedReader:
    """Windows of packed slices; files opened once per process (loader workers fork)."""

    def __init__(self, root: str | Path, index: dict):
        self.folder, self.hop, self.dim = Path(root) / PACKED, index["hop"], index["dim"]
        self.slices = index["slices"]
        self._fds: dict[str, int] = {}
        self._pid = -1

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_fds": {}, "_pid": -1}  # descriptors stay in their process

    def _read(self, kind: str, at: int, count: int, width: int = 1) -> np.ndarray:
        if self._pid != os.getpid():
            self._fds, self._pid = {}, os.getpid()
        dtype = np.dtype(ARRAYS[kind])
        if kind not in self._fds:
            self._fds[kind] = os.open(self.folder / f"{kind}.{dtype.str[1:]}", os.O_RDONLY)
        out = np.empty((count, width) if width > 1 else count, dtype)
        got = os.preadv(self._fds[kind], [memoryview(out).cast("B")], at * width * dtype.itemsize)
        if got != out.nbytes:
            raise OSError(f"{self.folder}: {kind} is shorter than its index; re-pack the store")
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
