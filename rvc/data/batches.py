"""Batches from a split's items: the dataset, the collate, the device-resident gather.

The batch dict is documented in rvc/data/datamodule.py. Host batches are built by `collate`;
with `data.on_device` the items live on the GPU (`Resident`) and batches are gathered there;
tests hold the two equal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.utils.data import Dataset

from rvc.data.items import Item, SplitItems, crop_window
from rvc.data.sampler import BucketBatchSampler


def padded_frames(longest: int, frame_multiple: int, max_frames: int) -> int:
    """Frames of a batch: a multiple of `frame_multiple`, capped at `max_frames` when it fits."""
    t = -(-longest // frame_multiple) * frame_multiple
    return min(t, max_frames) if longest <= max_frames else t


class SliceDataset(Dataset):
    """Items keyed by (index, epoch): the epoch travels with the key, so persistent workers
    crop as the main process would."""

    def __init__(
        self, items: SplitItems, seed: int, max_frames: int | None, resident: bool = False
    ):
        self.items, self.seed, self.max_frames = items, seed, max_frames
        self.resident = resident  # True: only the index; the data is gathered on the device

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, key: tuple[int, int]) -> tuple[Item | int, int, int]:
        i, epoch = key
        start, n = crop_window(int(self.items.lengths[i]), self.max_frames, self.seed, epoch, i)
        if self.resident:
            return i, start, n
        item, offset = self.items.window(i, start, n)  # lazy: just this window, from disk
        return item, offset, n


class Resident:
    """Items as padded tensors on one device; batch dicts are gathered from them."""

    def __init__(self, items: list[Item], hop: int, device: torch.device | str = "cpu"):
        b, f, dim = len(items), max(it.n for it in items), items[0].feats.shape[1]
        self.feats = torch.zeros(b, -(-f // 2), dim, dtype=torch.float16)  # [N, F/2, dim]
        self.pitch = torch.zeros(b, f, dtype=torch.int16)  # [N, F]
        self.pitchf = torch.zeros(b, f)  # [N, F]
        self.wave = torch.zeros(b, f, hop)  # [N, F, hop]: frame-major, a crop is whole frames
        for i, it in enumerate(items):
            self.feats[i, : len(it.feats)] = torch.from_numpy(it.feats)
            self.pitch[i, : it.n] = torch.from_numpy(it.pitch)
            self.pitchf[i, : it.n] = torch.from_numpy(it.pitchf)
            self.wave[i, : it.n] = torch.from_numpy(it.wave).view(it.n, hop)
        self.sid = torch.tensor([it.sid for it in items], dtype=torch.long)  # [N]
        for k in ("feats", "pitch", "pitchf", "wave", "sid"):
            setattr(self, k, getattr(self, k).to(device))

    def gather(
        self, index: torch.Tensor, start: torch.Tensor, length: torch.Tensor, frames: int
    ) -> dict[str, torch.Tensor]:
        """The batch dict for items `index` cropped to (start, length) [B], padded to `frames`."""
        t = torch.arange(frames, device=index.device)
        valid = t[None] < length[:, None]  # [B, T]
        pos = torch.where(valid, start[:, None] + t[None], 0)  # [B, T] frame in the item
        row, hop = index[:, None], self.wave.shape[-1]  # [B, 1]
        # one gather per tensor, no Python loop: no host syncs, static shapes on the device
        wave = torch.where(valid[..., None], self.wave[row, pos], 0.0)  # [B, T, hop]
        return {
            # 20 ms features: 10 ms frame k reads feature k // 2 (RVC's ×2 repeat)
            "phone": torch.where(valid[..., None], self.feats[row, pos // 2].float(), 0.0),
            "phone_lengths": length,
            "pitch": torch.where(valid, self.pitch[row, pos].long(), 0),
            "pitchf": torch.where(valid, self.pitchf[row, pos], 0.0),
            "wave": wave.reshape(len(index), 1, frames * hop),
            "wave_lengths": length * hop,
            "sid": self.sid[index],
        }


def collate(
    batch: list[tuple[Item | int, int, int]],
    hop: int,
    frame_multiple: int,
    max_frames: int,
    split: str | None = None,
) -> dict[str, Any]:
    """Pad items into the batch dict; with `split` (on_device) return indices to gather later."""
    refs, start, length = zip(*batch, strict=True)
    start, length = torch.tensor(start), torch.tensor(length)  # [B] long
    frames = padded_frames(int(length.max()), frame_multiple, max_frames)
    if split is not None:  # `frames` stays a plain int: the device gather sees a static shape
        index = torch.tensor(refs)
        return {"index": index, "start": start, "length": length, "frames": frames, "split": split}
    # copy each window straight into the batch: no padded copy of whole items first
    b, dim = len(refs), refs[0].feats.shape[1]
    phone, pitchf = torch.zeros(b, frames, dim), torch.zeros(b, frames)
    pitch, wave = torch.zeros(b, frames, dtype=torch.long), torch.zeros(b, 1, frames * hop)
    for j, (it, s, n) in enumerate(zip(refs, start.tolist(), length.tolist(), strict=True)):
        # 20 ms features: 10 ms frame k reads feature k // 2 (RVC's ×2 repeat)
        feats = torch.from_numpy(it.feats[s // 2 : (s + n + 1) // 2])
        phone[j, :n] = feats.repeat_interleave(2, 0)[s % 2 : s % 2 + n]
        pitch[j, :n] = torch.from_numpy(it.pitch[s : s + n])
        pitchf[j, :n] = torch.from_numpy(it.pitchf[s : s + n])
        wave[j, 0, : n * hop] = torch.from_numpy(it.wave[s * hop : (s + n) * hop])
    return {
        "phone": phone,
        "phone_lengths": length,
        "pitch": pitch,
        "pitchf": pitchf,
        "wave": wave,
        "wave_lengths": length * hop,
        "sid": torch.tensor([it.sid for it in refs], dtype=torch.long),
    }


class EpochBatches:
    """The sampler's batches as (index, epoch) keys, the epoch read when an epoch starts."""

    def __init__(self, sampler: BucketBatchSampler, epoch_fn: Callable[[], int]):
        self.sampler, self.epoch_fn = sampler, epoch_fn

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        self.sampler.set_epoch(self.epoch_fn())
        e = self.sampler.epoch
        return ([(i, e) for i in batch] for batch in self.sampler)
