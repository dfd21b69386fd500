"""Training items of one split: slices held in memory, or read from the store on demand.

A voice dataset is minutes long and fits in memory, where batches are fastest. A base-model
corpus is hundreds of hours, about 15 MB a minute at 40k with 768-dim features, and every DDP
rank would hold its own copy; there `lazy` reads each item's cropped window from the store's
files when a batch asks for it, so memory stays flat in the corpus size. Both give the same
items, array for array: the in-memory path is the lazy one read whole, once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf

from rvc.data.store import FeatureStore, SliceRecord
from rvc.errors import RVCError

if TYPE_CHECKING:
    from rvc.data.packed import PackedReader


class DataReadError(RVCError, ValueError):
    """A slice file of the store cannot be used; the message names it."""


@dataclass
class Item:
    """One training slice, or a window of it (n: its 10 ms frames)."""

    feats: np.ndarray  # [ceil(n / 2), dim] float16: 20 ms frames, repeated ×2 when batched
    pitch: np.ndarray  # [n] int16 coarse pitch
    pitchf: np.ndarray  # [n] float32 Hz
    wave: np.ndarray  # [n * hop] float32
    sid: int

    @property
    def n(self) -> int:
        return len(self.pitchf)


def crop_window(
    n: int, max_frames: int | None, seed: int, epoch: int, index: int
) -> tuple[int, int]:
    """(start, length) in frames of item `index` this epoch; a pure function of its inputs."""
    if max_frames is None or n <= max_frames:
        return 0, n
    rng = np.random.default_rng((seed, epoch, index))
    return int(rng.integers(0, n - max_frames + 1)), max_frames


def _rows(path: Path) -> int:
    """Rows of a .npy file, from its header alone (a memory map reads no data)."""
    try:
        return len(np.load(path, mmap_mode="r"))
    except (OSError, ValueError) as e:
        raise DataReadError(f"{path}: unreadable ({e}); re-run extract.py to redo it") from e


def slice_frames(store: FeatureStore, rec: SliceRecord, hop: int) -> int:
    """Usable 10 ms frames of a slice: where features, F0 and audio all reach."""
    feats, f0 = _rows(store.path("features", rec)), _rows(store.path("f0", rec))
    return min(feats * 2, f0, rec.n_samples // hop)


def read_window(
    store: FeatureStore, rec: SliceRecord, sample_rate: int, start: int, n: int
) -> Item:
    """Frames [start, start + n) of a slice; `start` even, so feature k // 2 stays aligned.

    Reads only the window: a seek into the audio, a slice of memory-mapped arrays.
    """
    hop = sample_rate // 100
    path = store.path("sliced", rec)
    try:
        with sf.SoundFile(path) as f:
            if f.samplerate != sample_rate:
                raise DataReadError(f"{path}: {f.samplerate} Hz, expected {sample_rate}")
            f.seek(start * hop)
            wave = f.read(n * hop, dtype="float32", always_2d=False)
        f0 = np.load(store.path("f0", rec), mmap_mode="r")[start : start + n]
        coarse = np.load(store.path("f0c", rec), mmap_mode="r")[start : start + n]
        feats = np.load(store.path("features", rec), mmap_mode="r")
        feats = feats[start // 2 : (start + n + 1) // 2]
    except (OSError, RuntimeError, ValueError) as e:
        if isinstance(e, DataReadError):
            raise
        raise DataReadError(f"{path} (or its F0/features): unreadable ({e})") from e
    if len(wave) != n * hop or len(f0) != n or len(coarse) != n or len(feats) != (n + 1) // 2:
        raise DataReadError(f"{path}: shorter than the store says; re-run extract.py")
    return Item(
        feats.astype(np.float16),
        coarse.astype(np.int16),
        np.array(f0, np.float32),
        np.ascontiguousarray(wave),
        rec.speaker,
    )


class SplitItems:
    """The items of one split, slices first, then `mutes` copies of the silence item.

    `window(i, start, n)` gives (item, offset): the frames [start, start + n) of item i are
    the item's frames [offset, offset + n). Held items come back whole; lazy ones as a window
    read from disk, begun one frame early when `start` is odd (features are 20 ms).
    """

    def __init__(
        self,
        store: FeatureStore,
        recs: list[SliceRecord],
        frames: list[int],
        sample_rate: int,
        mute: Item | None = None,
        mutes: int = 0,
        lazy: bool = False,
        reader: PackedReader | None = None,
    ):
        # workers get the split's records and the store's root, not the whole parsed manifest
        self.store = FeatureStore(store.root, read=False)
        self.recs, self.sample_rate = recs, sample_rate
        self.reader = reader  # a packed store (rvc/data/packed.py): read from its four files
        self.mute, self.n_slices = mute, len(recs)
        self.lengths = np.asarray(list(frames) + [mute.n if mute else 0] * mutes, np.int64)
        self.lazy = lazy
        self.held = None if lazy else [self._read(i, 0, n) for i, n in enumerate(frames)]

    def __len__(self) -> int:
        return len(self.lengths)

    def _read(self, i: int, start: int, n: int) -> Item:
        if self.reader is not None:
            return self.reader.window(self.recs[i].name, start, n)
        return read_window(self.store, self.recs[i], self.sample_rate, start, n)

    def window(self, i: int, start: int, n: int) -> tuple[Item, int]:
        if i >= self.n_slices:
            return self.mute, start
        if self.held is not None:
            return self.held[i], start
        first = start - start % 2
        return self._read(i, first, n + start - first), start - first

    def all(self) -> list[Item]:
        """Every item whole (for holding them on the device)."""
        if self.held is None:
            raise DataReadError("data.on_device needs the items in memory: set data.lazy=false")
        return self.held + [self.mute] * (len(self) - self.n_slices)
