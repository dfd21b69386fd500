"""A feature store of any length, made in seconds: for the data-path benchmark and memory test.

Audio and feature files are sparse (a header, then a hole the size of the data), so ten hours
cost a few MB of disk and no writing time, yet read back like real slices of silence. F0 is
real: slice i holds the constant 100 + i Hz, so a batch says which slices it came from.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from rvc.data.store import FeatureStore, SliceRecord, SourceRecord


def _sparse_wav(path: Path, n: int, sample_rate: int) -> None:
    """A 16-bit mono WAV of `n` zero samples, without writing them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    size = 2 * n
    fmt = struct.pack("<HHIIHH", 1, 1, sample_rate, 2 * sample_rate, 2, 16)
    head = b"RIFF" + struct.pack("<I", 36 + size) + b"WAVEfmt " + struct.pack("<I", 16) + fmt
    with open(path, "wb") as f:
        f.write(head + b"data" + struct.pack("<I", size))
        f.truncate(44 + size)


def _sparse_npy(path: Path, shape: tuple[int, ...], dtype) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    m = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)  # a hole, not zeros
    del m


def fabricate(
    root: str | Path,
    minutes: float,
    sample_rate: int = 40000,
    dim: int = 768,
    slice_s: float = 5.0,
    speakers: int = 1,
) -> FeatureStore:
    """A store at `root` of `minutes` of slices `slice_s` long, F0 and features all done."""
    store = FeatureStore(root, read=False)
    store.root.mkdir(parents=True, exist_ok=True)
    store.params = {"sample_rate": sample_rate}
    hop, frames = sample_rate // 100, round(slice_s * 100)
    count = max(2, round(minutes * 60 / slice_s))
    f0_done, feat_done, names = {}, {}, []
    for i in range(count):
        rec = SliceRecord(
            f"s{i:06d}", i % speakers, "synthetic", 0, frames * hop, frames * hop,
            frames * 160, f"{i:016x}",
        )  # fmt: skip
        _sparse_wav(store.path("sliced", rec), frames * hop, sample_rate)
        for kind, arr in (("f0", np.full(frames, 100.0 + i, np.float32)),
                          ("f0c", np.ones(frames, np.int16))):  # fmt: skip
            store.path(kind, rec).parent.mkdir(parents=True, exist_ok=True)
            np.save(store.path(kind, rec), arr)
        _sparse_npy(store.path("features", rec), (frames // 2, dim), np.float16)
        store.slices[rec.name] = rec
        f0_done[rec.name] = feat_done[rec.name] = rec.sha
        names.append(rec.name)
    store.sources["synthetic"] = SourceRecord("synthetic", 0, "", "", "ok", slices=names)
    store.stages = {
        "f0": {"config": {}, "hash": "", "done": f0_done},
        "features": {"config": {"name": "synthetic", "dim": dim}, "hash": "", "done": feat_done,
                     "mute": True},
    }  # fmt: skip
    store.mute_path().parent.mkdir(parents=True, exist_ok=True)
    np.save(store.mute_path(), np.zeros((150, dim), np.float16))
    store.save()
    return store
