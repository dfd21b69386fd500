"""The lazy data path gives the in-memory path's batches; held-out speakers; the size rule."""

from __future__ import annotations

import shutil

import pytest
import torch

from rvc.data.datamodule import DataConfigError, RVCDataModule
from rvc.data.items import crop_window
from rvc.data.packed import PACKED
from rvc.data.store import FeatureStore
from tests.data.conftest import HOP, SR
from tests.data.test_datamodule import _epoch, _equal, _Recorder, _trainer


def _dm(store_dir, **kw) -> RVCDataModule:
    args = dict(exp_dir=str(store_dir), sample_rate=SR, hop_length=HOP, batch_size=3)
    dm = RVCDataModule(**{**args, "max_frames": 128, "frame_multiple": 32, **kw})
    dm.setup("fit")
    return dm


def test_lazy_batches_equal_the_in_memory_ones(store_dir):
    held, lazy = _dm(store_dir, lazy=False), _dm(store_dir, lazy=True)
    assert not held.lazy and lazy.lazy and lazy.train_items.held is None
    assert (held.train_names, held.val_names) == (lazy.train_names, lazy.val_names)
    assert (held.train_items.lengths == lazy.train_items.lengths).all()
    odd = 0
    for epoch in (0, 1, 2):
        for (ia, a), (ib, b) in zip(_epoch(held, epoch), _epoch(lazy, epoch), strict=True):
            assert ia == ib and _equal(a, b)
            for i in ia:
                odd += (
                    crop_window(int(held.train_items.lengths[i]), 128, held.seed, epoch, i)[0] % 2
                )
    assert odd > 0  # crops that start mid-feature (20 ms) were among them
    for a, b in zip(held.val_dataloader(), lazy.val_dataloader(), strict=True):
        assert _equal(a, b)


def _workers_match(held: RVCDataModule, dm: RVCDataModule) -> None:
    """`dm`'s persistent loader workers give `held`'s batches, epoch after epoch."""
    loader = dm.train_dataloader()
    for epoch in (0, 1):
        dm.epoch = epoch
        for (_, want), got in zip(_epoch(held, epoch), loader, strict=True):
            assert _equal(got, want)
    del loader  # stop the workers now


def test_lazy_batches_through_loader_workers(store_dir):
    _workers_match(_dm(store_dir, lazy=False), _dm(store_dir, lazy=True, num_workers=2))


@pytest.mark.filterwarnings("ignore:.*(validation_step|dirpath has changed)")
def test_lazy_resume_replays_the_epoch(store_dir, tmp_path):
    whole = _Recorder()
    _trainer(tmp_path, 3, ckpt=True).fit(whole, datamodule=_dm(store_dir, lazy=True))
    resumed = _Recorder()
    _trainer(tmp_path / "r", 3, ckpt=True).fit(
        resumed, datamodule=_dm(store_dir, lazy=True), ckpt_path=tmp_path / "epoch=1.ckpt"
    )
    assert [s[1:] for s in resumed.seen] == [s[1:] for s in whole.seen if s[0] == 2]


def test_auto_goes_lazy_above_the_size_threshold(store_dir):
    assert not _dm(store_dir).lazy  # a few seconds of audio: in memory
    assert _dm(store_dir, lazy_above_gb=0).lazy
    with pytest.raises(DataConfigError, match="on_device.*data.lazy=false"):
        RVCDataModule(str(store_dir), SR, HOP, on_device=True, lazy=True)
    with pytest.raises(DataConfigError, match="data.lazy must be"):
        RVCDataModule(str(store_dir), SR, HOP, lazy="sometimes")


def test_held_out_speakers_are_validation_only(store_dir):
    store = FeatureStore(store_dir)
    by_spk = {s: {n for n, r in store.slices.items() if r.speaker == s} for s in (0, 1)}
    dm = _dm(store_dir, val_speakers=[1])
    assert dm.val_speakers == [1]
    assert by_spk[1] <= set(dm.val_names) and not by_spk[1] & set(dm.train_names)
    assert set(dm.val_names) - by_spk[1]  # and held-out slices of the training speaker
    assert set(dm.train_names) | set(dm.val_names) == set(store.slices)
    sids = torch.cat([b["sid"] for _, b in _epoch(dm, 0)])
    assert set(sids.tolist()) == {0}  # speaker 1 never trains (mutes are speaker 0)
    drawn = _dm(store_dir, val_speakers=1)
    assert (
        len(drawn.val_speakers) == 1
        and drawn.val_speakers == _dm(store_dir, val_speakers=1).val_speakers
    )
    with pytest.raises(DataConfigError, match="keep at least one"):
        _dm(store_dir, val_speakers=2)
    with pytest.raises(DataConfigError, match=r"speakers are \[0, 1\] \(no \[7\]\)"):
        _dm(store_dir, val_speakers=[7])


def test_packed_store_gives_the_same_batches_and_repacks_when_the_store_changes(
    store_dir, tmp_path
):
    copy = tmp_path / "store"
    shutil.copytree(store_dir, copy)
    held, packed = _dm(copy, lazy=False), _dm(copy, packed=True, num_workers=2)
    (index_file,) = (copy / PACKED).glob("*/index.json")  # one pack, named by its key
    index = index_file.stat().st_mtime_ns
    assert packed.lazy and packed.train_items.reader is not None
    _workers_match(held, packed)
    for a, b in zip(held.val_dataloader(), packed.val_dataloader(), strict=True):
        assert _equal(a, b)
    _dm(copy, packed=True)
    assert index_file.stat().st_mtime_ns == index  # current: not redone
    store = FeatureStore(copy)
    gone = sorted(store.slices)[0]
    del store.stages["f0"]["done"][gone]  # the store changed: one slice fewer is usable
    store.save()
    again = _dm(copy, packed=True)
    assert gone not in again.train_names + again.val_names
    assert not index_file.exists() and len(list((copy / PACKED).glob("*/index.json"))) == 1
    renamed = FeatureStore(copy)  # a renumbered speaker, same audio: packed again, new ids
    first = renamed.slices[again.val_names[0]]
    was = {k: renamed.path(k, first) for k in ("sliced", "sliced16k", "f0", "f0c", "features")}
    first.speaker = 7  # as a re-ingest under a new speaker folder leaves it
    for kind, path in was.items():
        renamed.path(kind, first).parent.mkdir(parents=True, exist_ok=True)
        path.rename(renamed.path(kind, first))
    renamed.save()
    moved = _dm(copy, packed=True, val_slices=len(again.val_names))
    sids = torch.cat([b["sid"] for b in moved.val_dataloader()])
    assert 7 in sids.tolist()
    with pytest.raises(DataConfigError, match="packed reads windows lazily"):
        RVCDataModule(str(copy), SR, HOP, packed=True, lazy=False)
