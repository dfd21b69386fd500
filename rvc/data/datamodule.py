"""Training data: the feature store's slices as padded batches for the RVC LightningModule.

Each batch is a dict (T: padded 10 ms frames, a multiple of `frame_multiple` and at most
`max_frames` unless a validation slice is longer; hop: target-rate samples per frame):

    phone          [B, T, dim]    float32  content features, 20 ms frames repeated ×2
    phone_lengths  [B]            long     valid frames of each item
    pitch          [B, T]         long     coarse pitch 1..255 (docs/formats.md §5)
    pitchf         [B, T]         float32  F0 in Hz, 0 = unvoiced
    wave           [B, 1, T*hop]  float32  target-rate audio
    wave_lengths   [B]            long     phone_lengths * hop
    sid            [B]            long     speaker id

Everything past an item's length is 0 (pitch too, as in RVC; the model masks padding anyway).
Train slices longer than `max_frames` are cropped at an offset drawn from (seed, epoch, index),
and batches come from a `BucketBatchSampler` seeded with (seed, epoch): epoch k's batches are
the same whether or not the run was resumed. The sampler shards across DDP ranks itself, so
train with `Trainer(use_distributed_sampler=False)`. Validation is not sharded: each rank
sees every validation slice.

Small stores are read into memory once; large ones (`lazy`, chosen by size under `auto`) are
read window by window from the store's files by the loader workers, so memory stays flat in
the corpus size (rvc/data/items.py). Validation holds out slices and, with `val_speakers`,
every slice of whole speakers.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from rvc.data.batches import EpochBatches, Resident, SliceDataset, collate
from rvc.data.items import DataReadError, Item, SplitItems, slice_frames
from rvc.data.packed import PackedReader, current_pack, pack
from rvc.data.sampler import BucketBatchSampler
from rvc.data.store import MANIFEST, FeatureStore, MissingMuteError, SliceRecord
from rvc.errors import RVCError
from rvc.formats import MUTE_SECONDS


class DataConfigError(RVCError, ValueError):
    """The store or the data options cannot make a training set; the message says why."""


def open_store(exp_dir: str | Path, sample_rate: int | None = None) -> FeatureStore:
    """The feature store at `exp_dir`, checked: there is one, it reads, and (given a rate) its
    slices are at `sample_rate`. The one home of these checks: train.py runs them before
    training, the DataModule at setup, evaluate before converting."""
    root = Path(exp_dir)
    if not (root / MANIFEST).exists():
        raise DataConfigError(
            f"no feature store at {root} (no {MANIFEST}): run extract.py first, "
            f"`python extract.py name={root.name} inputs=[...]` with the same model=, f0= and "
            "embedder= options"
        )
    try:
        store = FeatureStore(root)
    except ValueError as e:
        raise DataConfigError(str(e)) from e
    have = store.params.get("sample_rate")
    if sample_rate is not None and have != int(sample_rate):
        raise DataConfigError(
            f"the store {root} holds {have} Hz slices but the model config is {sample_rate} Hz; "
            "pick the model= of that rate (32k/40k/48k) or re-run extract.py with this one"
        )
    return store


def split_names(
    names: list[str], val_slices: float | int, seed: int
) -> tuple[list[str], list[str]]:
    """(train, val) slice names: a seeded permutation of the sorted names; `val_slices` a
    fraction (< 1) or a count, at least 1 and at most n − 1 when n ≥ 2. Evaluation uses the
    same split to find the held-out slices."""
    n = len(names)
    k = round(val_slices * n) if val_slices < 1 else int(val_slices)
    k = min(max(k, 1), n - 1) if n >= 2 else 0
    perm = np.random.default_rng(seed).permutation(n)
    val = {names[i] for i in perm[:k]}
    return [s for s in names if s not in val], [s for s in names if s in val]


def usable_slices(store: FeatureStore, min_slices: int = 1) -> dict[str, SliceRecord]:
    """The store's slices with both F0 and features done, by name (sorted)."""
    done = {s: store.stages.get(s, {}).get("done", {}) for s in ("f0", "features")}
    recs = {
        n: r
        for n, r in sorted(store.slices.items())
        if all(d.get(n) == r.sha for d in done.values())
    }
    if not recs:
        raise DataConfigError(
            f"{store.root}: no slices with both F0 and features; run extract.py "
            f"(stages slice, f0, features) first"
        )
    if len(recs) < min_slices:
        raise DataConfigError(
            f"{store.root}: only {len(recs)} usable slices, need at least "
            f"data.min_slices={min_slices}; add more audio and re-run extract.py"
        )
    return recs


def held_out_speakers(speakers: list[int], val_speakers: int | list[int], seed: int) -> list[int]:
    """`val_speakers`: a count (drawn with the seed) or a list of ids kept out of training."""
    if isinstance(val_speakers, int):
        if val_speakers <= 0:
            return []
        if val_speakers >= len(speakers):
            raise DataConfigError(
                f"data.val_speakers={val_speakers} would hold out all {len(speakers)} speakers; "
                "keep at least one for training"
            )
        perm = np.random.default_rng((seed, 1)).permutation(len(speakers))
        return sorted(speakers[i] for i in perm[:val_speakers])
    ids = sorted({int(s) for s in val_speakers})
    unknown = [s for s in ids if s not in speakers]
    if unknown or len(ids) >= len(speakers):
        raise DataConfigError(
            f"data.val_speakers={ids}: the store's speakers are {speakers}"
            + (f" (no {unknown})" if unknown else "; keep at least one for training")
        )
    return ids


def split_slices(
    recs: dict[str, SliceRecord], val_slices: float | int, seed: int, val_speakers=0
) -> tuple[list[str], list[str], list[int]]:
    """(train, val, held-out speakers): held-out slices of the training speakers, plus every
    slice of the held-out speakers. Training and evaluation both split with this."""
    held = held_out_speakers(sorted({r.speaker for r in recs.values()}), val_speakers, seed)
    seen = sorted(n for n, r in recs.items() if r.speaker not in held)
    train, val = split_names(seen, val_slices, seed)
    return train, sorted(val + [n for n, r in recs.items() if r.speaker in held]), held


class RVCDataModule(L.LightningDataModule):
    """Slices of one feature store (`exp_dir`), split into train/val, as padded batches."""

    def __init__(
        self,
        exp_dir: str,
        sample_rate: int,
        hop_length: int,
        batch_size: int = 8,
        val_slices: float | int = 0.1,
        seed: int = 1234,
        mute_slices: int = 2,
        max_frames: int = 400,
        frame_multiple: int = 50,
        num_workers: int = 0,
        pin_memory: bool = False,
        on_device: bool = False,
        min_slices: int = 2,
        lazy: bool | str = "auto",
        lazy_above_gb: float = 2.0,
        val_speakers: int | list[int] = 0,
        packed: bool = False,
    ):
        super().__init__()
        if int(hop_length) * 100 != int(sample_rate):  # frames are 10 ms at every rate
            raise DataConfigError(
                f"hop_length {hop_length} is not 10 ms at sample_rate {sample_rate} "
                f"(expected {int(sample_rate) // 100})"
            )
        for name, value, low in (
            ("batch_size", batch_size, 1),
            ("max_frames", max_frames, 1),
            ("frame_multiple", frame_multiple, 1),
            ("mute_slices", mute_slices, 0),
            ("val_slices", val_slices, 0),
            ("min_slices", min_slices, 1),
            ("lazy_above_gb", lazy_above_gb, 0),
        ):
            if value < low:
                raise DataConfigError(f"data.{name} must be >= {low}, got {value}")
        if str(lazy).lower() not in ("auto", "true", "false"):
            raise DataConfigError(f"data.lazy must be auto, true or false, got {lazy!r}")
        if on_device and (str(lazy).lower() == "true" or packed):
            raise DataConfigError(
                "data.on_device holds every slice on the GPU: use data.lazy=false"
            )
        if packed and str(lazy).lower() == "false":
            raise DataConfigError("data.packed reads windows lazily: use data.lazy=true or auto")
        self.save_hyperparameters(logger=False)
        self.exp_dir = Path(exp_dir)
        self.sample_rate, self.hop = int(sample_rate), int(hop_length)
        self.batch_size, self.val_slices, self.seed = int(batch_size), val_slices, int(seed)
        self.mute_slices, self.max_frames = int(mute_slices), int(max_frames)
        self.frame_multiple, self.min_slices = int(frame_multiple), int(min_slices)
        self.num_workers, self.pin_memory, self.on_device = int(num_workers), pin_memory, on_device
        self.lazy_option, self.lazy_above_gb = str(lazy).lower(), float(lazy_above_gb)
        self.val_speakers_option, self.packed = val_speakers, bool(packed)
        self.prepare_data_per_node = False  # one packer (global rank 0) on a shared filesystem
        self.epoch = 0  # the train order's epoch when no trainer is attached (tests, tools)
        self.train_items: SplitItems | None = None
        self.val_items: SplitItems | None = None
        self._resident: dict[str, Resident] = {}

    # ---- loading ---------------------------------------------------------------------------
    def _open_store(self) -> FeatureStore:
        return open_store(self.exp_dir, self.sample_rate)

    def _mute(self, store: FeatureStore) -> Item:
        try:
            feats = store.load_mute_features().astype(np.float16)  # [F, dim]
        except MissingMuteError as e:
            raise DataConfigError(str(e)) from e
        n = min(len(feats) * 2, round(MUTE_SECONDS * 100))
        return Item(
            feats[: (n + 1) // 2],
            np.ones(n, np.int16),
            np.zeros(n, np.float32),
            np.zeros(n * self.hop, np.float32),
            0,
        )

    def _is_lazy(self, frames: dict[str, int]) -> bool:
        """`lazy=auto`: hold the slices in memory while they take under `lazy_above_gb`."""
        if self.lazy_option != "auto":
            return self.lazy_option == "true"
        if self.on_device:
            return False
        per_frame = self.hop * 4 + 4 + 2 + self.dim  # audio f32, F0 f32, pitch i16, feats f16/2
        return sum(frames.values()) * per_frame > self.lazy_above_gb * 2**30

    def prepare_data(self) -> None:
        """With `packed`, pack the store once (rank 0) if it changed since the last pack."""
        if self.packed:
            store = self._open_store()
            recs = list(usable_slices(store, self.min_slices).values())
            if current_pack(store, recs, self.hop) is None:
                try:
                    pack(store, recs, self.hop)
                except (DataReadError, OSError) as e:
                    raise DataConfigError(f"packing {self.exp_dir}: {e}") from e

    def setup(self, stage: str | None = None) -> None:
        """Index the store's finished slices, split them, and (small stores) load them once."""
        if self.train_items is not None:
            return
        store = self._open_store()
        recs = usable_slices(store, self.min_slices)
        reader = None
        if self.packed:
            if self.trainer is None:  # no Lightning to call prepare_data first (tests, tools)
                self.prepare_data()
            index = current_pack(store, list(recs.values()), self.hop)
            if index is None:
                raise DataConfigError(f"{self.exp_dir}: the packed store is missing or stale")
            reader = PackedReader(store.root, index)
            frames = {n: index["slices"][n][2] for n in recs}
            self.dim = int(index["dim"])
        else:
            try:
                frames = {n: slice_frames(store, r, self.hop) for n, r in recs.items()}
                first = store.path("features", recs[next(iter(frames))])
                self.dim = int(np.load(first, mmap_mode="r").shape[1])
            except DataReadError as e:
                raise DataConfigError(str(e)) from e
        self.speakers = sorted({r.speaker for r in recs.values()})
        try:
            self.train_names, self.val_names, self.val_speakers = split_slices(
                recs, self.val_slices, self.seed, self.val_speakers_option
            )
        except ValueError as e:
            raise DataConfigError(str(e)) from e
        self.lazy = self.packed or self._is_lazy(frames)
        mute = self._mute(store) if self.mute_slices else None
        try:
            self.train_items = SplitItems(
                store,
                [recs[n] for n in self.train_names],
                [frames[n] for n in self.train_names],
                self.sample_rate,
                mute,
                self.mute_slices,  # silence to learn silence; train only
                lazy=self.lazy,
                reader=reader,
            )
            self.val_items = SplitItems(
                store,
                [recs[n] for n in self.val_names],
                [frames[n] for n in self.val_names],
                self.sample_rate,
                lazy=self.lazy,
                reader=reader,
            )
        except DataReadError as e:
            raise DataConfigError(str(e)) from e
        self.dataset_length = len(self.train_names)
        self.n_train_frames = sum(frames[n] for n in self.train_names)
        if self.on_device:
            device = (
                self.trainer.strategy.root_device
                if self.trainer is not None
                else torch.device("cpu")
            )
            self._resident = {"train": Resident(self.train_items.all(), self.hop, device)}
            if len(self.val_items):
                self._resident["val"] = Resident(self.val_items.all(), self.hop, device)

    # ---- loaders ---------------------------------------------------------------------------
    def _current_epoch(self) -> int:
        # what Lightning gives samplers' set_epoch; current_epoch lags by one right after a resume
        t = self.trainer
        return t.fit_loop.epoch_progress.current.processed if t is not None else self.epoch

    def _loader(self, split: str, batches: Any) -> DataLoader:
        items = self.train_items if split == "train" else self.val_items
        crop = self.max_frames if split == "train" else None  # validation sees whole slices
        fn = partial(
            collate,
            hop=self.hop,
            frame_multiple=self.frame_multiple,
            max_frames=self.max_frames,
            split=split if self.on_device else None,
        )
        return DataLoader(
            SliceDataset(items, self.seed, crop, resident=self.on_device),
            batch_sampler=batches,
            collate_fn=fn,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
        )

    def train_sampler(self) -> BucketBatchSampler:
        """This rank's batch sampler over the train items (mutes included)."""
        rank, world = (
            (self.trainer.global_rank, self.trainer.world_size)
            if self.trainer is not None
            else (0, 1)
        )
        lengths = np.minimum(self.train_items.lengths, self.max_frames)
        return BucketBatchSampler(
            lengths, self.batch_size, seed=self.seed, num_replicas=world, rank=rank
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", EpochBatches(self.train_sampler(), self._current_epoch))

    def val_dataloader(self) -> DataLoader | list:
        if not len(self.val_items):
            return []
        keys = [(i, 0) for i in range(len(self.val_items))]  # in name order, never cropped
        bs = min(self.batch_size, len(keys))
        return self._loader("val", [keys[i : i + bs] for i in range(0, len(keys), bs)])

    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        """With `on_device`, turn an index batch into the batch dict, on the device."""
        if "index" not in batch:
            return batch
        res = self._resident[batch["split"]]
        return res.gather(batch["index"], batch["start"], batch["length"], batch["frames"])
