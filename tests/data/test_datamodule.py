"""RVCDataModule and BucketBatchSampler on a small store made by the real extraction."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import numpy as np
import pytest
import soundfile as sf
import torch

from rvc.data.batches import padded_frames
from rvc.data.datamodule import DataConfigError, RVCDataModule
from rvc.data.items import crop_window
from rvc.data.sampler import BucketBatchSampler
from rvc.data.store import FeatureStore
from tests.data.conftest import HOP, SR

KEYS = {"phone", "phone_lengths", "pitch", "pitchf", "wave", "wave_lengths", "sid"}


def _dm(store_dir: Path, **kw) -> RVCDataModule:
    args = dict(exp_dir=str(store_dir), sample_rate=SR, hop_length=HOP, batch_size=3)
    dm = RVCDataModule(**{**args, "max_frames": 128, "frame_multiple": 32, **kw})
    dm.setup("fit")
    return dm


def _epoch(dm: RVCDataModule, epoch: int) -> list[tuple[list[int], dict]]:
    """(train item indices, batch) of one epoch, the indices from a sampler twin."""
    dm.epoch = epoch
    sampler = dm.train_sampler()
    sampler.set_epoch(epoch)
    return list(zip(sampler, dm.train_dataloader(), strict=True))


def _equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ---- split ---------------------------------------------------------------------------------
def test_split_is_seeded_disjoint_and_complete(store_dir):
    store = FeatureStore(store_dir)
    dm = _dm(store_dir)
    assert set(dm.train_names).isdisjoint(dm.val_names)
    assert set(dm.train_names) | set(dm.val_names) == set(store.slices)
    assert len(dm.val_names) == 1  # 10 % of ~8, at least one
    assert dm.dataset_length == len(dm.train_names) and dm.dim == 768
    assert dm.speakers == [0, 1]
    assert dm.n_train_frames == sum(dm.train_items.lengths[: dm.dataset_length])
    again = _dm(store_dir)
    assert (again.train_names, again.val_names) == (dm.train_names, dm.val_names)
    splits = {tuple(_dm(store_dir, seed=s).val_names) for s in range(6)}
    assert len(splits) > 1  # the seed moves the split
    n = len(store.slices)
    assert len(_dm(store_dir, val_slices=3).val_names) == 3
    assert len(_dm(store_dir, val_slices=0.99).val_names) == n - 1  # never all of them
    assert len(_dm(store_dir, val_slices=100).val_names) == n - 1


# ---- batches -------------------------------------------------------------------------------
def test_batch_dict_shapes_dtypes_and_zero_padding(store_dir):
    dm = _dm(store_dir)
    for _, b in _epoch(dm, 0) + [(None, v) for v in dm.val_dataloader()]:
        assert set(b) == KEYS
        bsz, t = b["phone"].shape[:2]
        assert t % 32 == 0 or t == 128
        assert b["phone"].shape == (bsz, t, 768) and b["phone"].dtype == torch.float32
        assert b["pitch"].shape == (bsz, t) and b["pitch"].dtype == torch.long
        assert b["pitchf"].shape == (bsz, t) and b["pitchf"].dtype == torch.float32
        assert b["wave"].shape == (bsz, 1, t * HOP) and b["wave"].dtype == torch.float32
        for k in ("phone_lengths", "wave_lengths", "sid"):
            assert b[k].shape == (bsz,) and b[k].dtype == torch.long
        assert torch.equal(b["wave_lengths"], b["phone_lengths"] * HOP)
        n = b["phone_lengths"]
        assert int(n.max()) > t - 32  # no more padding than one multiple
        for j, m in enumerate(n.tolist()):
            assert not b["phone"][j, m:].any() and not b["pitch"][j, m:].any()
            assert not b["pitchf"][j, m:].any() and not b["wave"][j, 0, m * HOP :].any()


def test_val_batches_equal_the_stored_slices(store_dir):
    store = FeatureStore(store_dir)
    dm = _dm(store_dir, val_slices=4, batch_size=3)
    batches = list(dm.val_dataloader())
    assert [len(b["sid"]) for b in batches] == [3, 1]
    items = [(b, j) for b in batches for j in range(len(b["sid"]))]
    for name, (b, j) in zip(dm.val_names, items, strict=True):
        rec = store.slices[name]
        feats, f0 = store.load_features(rec), store.load_f0(rec)
        wave, _ = sf.read(store.path("sliced", rec), dtype="float32")
        n = int(b["phone_lengths"][j])
        assert n == min(len(feats) * 2, len(f0), len(wave) // HOP)  # never cropped
        want = np.repeat(feats, 2, 0)[:n].astype(np.float32)
        np.testing.assert_array_equal(b["phone"][j, :n].numpy(), want)
        np.testing.assert_array_equal(b["pitchf"][j, :n].numpy(), f0[:n])
        np.testing.assert_array_equal(
            b["pitch"][j, :n].numpy(), np.load(store.path("f0c", rec))[:n]
        )
        np.testing.assert_array_equal(b["wave"][j, 0, : n * HOP].numpy(), wave[: n * HOP])
        assert int(b["sid"][j]) == rec.speaker


def test_train_items_are_cropped_windows_and_mutes_are_silence(store_dir):
    store = FeatureStore(store_dir)
    dm = _dm(store_dir, mute_slices=3)
    mute = store.load_mute_features()
    for epoch in (0, 1):
        cropped = mutes = 0
        for idx, b in _epoch(dm, epoch):
            for j, i in enumerate(idx):
                n = int(b["phone_lengths"][j])
                if i >= dm.dataset_length:  # a mute slice
                    mutes += 1
                    start, m = crop_window(min(2 * len(mute), 300), 128, dm.seed, epoch, i)
                    assert n == m and int(b["sid"][j]) == 0
                    assert not b["wave"][j].any() and not b["pitchf"][j].any()
                    assert (b["pitch"][j, :n] == 1).all()
                    want = np.repeat(mute, 2, 0)[start : start + n].astype(np.float32)
                    np.testing.assert_array_equal(b["phone"][j, :n].numpy(), want)
                    continue
                rec = store.slices[dm.train_names[i]]
                full = int(dm.train_items.lengths[i])
                start, m = crop_window(full, 128, dm.seed, epoch, i)
                assert n == m == min(full, 128)
                cropped += full > 128
                want = np.repeat(store.load_features(rec), 2, 0)[start : start + n]
                np.testing.assert_array_equal(b["phone"][j, :n].numpy(), want.astype(np.float32))
                np.testing.assert_array_equal(
                    b["pitchf"][j, :n].numpy(), store.load_f0(rec)[start : start + n]
                )
                wave, _ = sf.read(store.path("sliced", rec), dtype="float32")
                np.testing.assert_array_equal(
                    b["wave"][j, 0, : n * HOP].numpy(), wave[start * HOP : (start + n) * HOP]
                )
        assert mutes == 3 and cropped > 0


def test_epochs_differ_and_repeat_exactly_in_a_fresh_datamodule(store_dir):
    a, b = _dm(store_dir), _dm(store_dir)
    e0, e1 = _epoch(a, 0), _epoch(a, 1)
    assert [i for i, _ in e0] != [i for i, _ in e1]
    for (ia, ba), (ib, bb) in zip(e1, _epoch(b, 1), strict=True):  # fresh module, same epoch
        assert ia == ib and _equal(ba, bb)
    seen = sorted(i for idx, _ in e1 for i in idx)
    assert seen == list(range(len(a.train_items)))  # each train item (mutes too) once


def test_on_device_batches_equal_the_in_memory_ones(store_dir):
    host, dev = _dm(store_dir, val_slices=3), _dm(store_dir, val_slices=3, on_device=True)
    for epoch in (0, 2):
        pairs = zip(_epoch(host, epoch), _epoch(dev, epoch), strict=True)
        for (_, want), (_, idx_batch) in pairs:
            assert "index" in idx_batch and isinstance(idx_batch["frames"], int)
            assert _equal(dev.on_after_batch_transfer(idx_batch, 0), want)
    for want, idx_batch in zip(host.val_dataloader(), dev.val_dataloader(), strict=True):
        assert _equal(dev.on_after_batch_transfer(idx_batch, 0), want)


def test_persistent_workers_follow_the_epoch(store_dir):
    host, workers = _dm(store_dir), _dm(store_dir, num_workers=2)
    loader = workers.train_dataloader()  # one loader, its workers kept across epochs
    assert loader.persistent_workers
    for epoch in (0, 1):
        workers.epoch = epoch
        for (_, want), got in zip(_epoch(host, epoch), loader, strict=True):
            assert _equal(got, want)
    del loader  # stop the workers now, not in a later test's garbage collection


def test_ddp_ranks_share_the_epoch_evenly(store_dir):
    dm = _dm(store_dir, batch_size=2)
    per_rank = []
    for rank in (0, 1):
        dm.trainer = SimpleNamespace(global_rank=rank, world_size=2, current_epoch=3)
        sampler = dm.train_sampler()
        sampler.set_epoch(3)
        per_rank.append(list(sampler))
        assert len(per_rank[-1]) == len(sampler) == len(dm.train_dataloader())
    dm.trainer = None
    assert len(per_rank[0]) == len(per_rank[1])
    covered = {i for batches in per_rank for b in batches for i in b}
    assert covered == set(range(len(dm.train_items)))


# ---- the sampler alone ---------------------------------------------------------------------
@pytest.mark.parametrize("n,bs", [(1, 4), (7, 3), (50, 4), (203, 8)])
def test_bucket_sampler_covers_each_index_once_per_epoch(n, bs):
    lengths = np.random.default_rng(n).integers(10, 500, n)
    s = BucketBatchSampler(lengths, bs, seed=5, pool_factor=3)
    orders = []
    for epoch in (0, 1):
        s.set_epoch(epoch)
        batches = list(s)
        assert len(batches) == len(s) and all(1 <= len(b) <= bs for b in batches)
        assert sorted(i for b in batches for i in b) == list(range(n))
        orders.append(batches)
        twin = BucketBatchSampler(lengths, bs, seed=5, pool_factor=3)
        twin.set_epoch(epoch)
        assert list(twin) == batches
    if n > bs:
        assert orders[0] != orders[1]


def test_bucket_sampler_groups_similar_lengths_and_shards():
    lengths = np.random.default_rng(0).integers(10, 1000, 400)
    s = BucketBatchSampler(lengths, 8, seed=1)
    spread = np.mean([np.ptp(lengths[b]) for b in s])
    assert spread < 0.1 * np.ptp(lengths)  # far tighter than random batches
    for n, world in ((400, 3), (17, 2), (5, 4), (3, 8)):
        shards = [
            BucketBatchSampler(lengths[:n], 4, seed=1, num_replicas=world, rank=r)
            for r in range(world)
        ]
        got = [list(sh) for sh in shards]
        assert len({len(g) for g in got}) == 1 and len(got[0]) == len(shards[0])
        assert {i for g in got for b in g for i in b} == set(range(n))
        dropped = [
            BucketBatchSampler(lengths[:n], 4, seed=1, num_replicas=world, rank=r, drop_last=True)
            for r in range(world)
        ]
        assert {len(list(d)) for d in dropped} == {len(dropped[0])}
        assert all(len(b) == 4 for d in dropped for b in d)


def test_padded_frames_rule():
    assert padded_frames(1, 50, 400) == 50 and padded_frames(50, 50, 400) == 50
    assert padded_frames(51, 50, 400) == 100 and padded_frames(399, 50, 400) == 400
    assert padded_frames(100, 32, 100) == 100  # capped at max_frames when the items fit
    assert padded_frames(401, 50, 400) == 450  # a long validation slice: just a multiple


# ---- with a Trainer: resume replays the epoch ----------------------------------------------
class _Recorder(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.seen: list[tuple[int, list[int], float]] = []

    def training_step(self, batch, i):
        lengths = batch["phone_lengths"].tolist()
        self.seen.append((self.current_epoch, lengths, float(batch["wave"].abs().sum())))
        return (self.w**2).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _trainer(root: Path, epochs: int, ckpt: bool = False) -> L.Trainer:
    from lightning.pytorch.callbacks import ModelCheckpoint

    cb = (
        [ModelCheckpoint(root, save_top_k=-1, every_n_epochs=1, filename="{epoch}")] if ckpt else []
    )
    return L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        callbacks=cb,
        enable_checkpointing=ckpt,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
        limit_val_batches=0,
        default_root_dir=root,
    )


@pytest.mark.filterwarnings("ignore:.*(validation_step|dirpath has changed)")
def test_resumed_run_sees_the_same_batches_as_an_uninterrupted_one(store_dir, tmp_path):
    whole = _Recorder()
    _trainer(tmp_path, 3, ckpt=True).fit(whole, datamodule=_dm(store_dir))
    by_epoch = {e: [s[1:] for s in whole.seen if s[0] == e] for e in range(3)}
    assert by_epoch[0] != by_epoch[1] != by_epoch[2]
    resumed = _Recorder()
    _trainer(tmp_path / "r", 3, ckpt=True).fit(
        resumed, datamodule=_dm(store_dir), ckpt_path=tmp_path / "epoch=1.ckpt"
    )
    assert [s[1:] for s in resumed.seen] == by_epoch[2]
    # and the epoch the trainer reports is the one a trainer-less module replays
    dm = _dm(store_dir)
    replay = [(b["phone_lengths"].tolist(), float(b["wave"].abs().sum())) for _, b in _epoch(dm, 2)]
    assert replay == by_epoch[2]


# ---- errors ----------------------------------------------------------------------------------
def test_clear_errors(store_dir, tmp_path):
    with pytest.raises(DataConfigError, match=r"40000 Hz.*32000"):
        _dm(store_dir, sample_rate=32000, hop_length=320)
    with pytest.raises(DataConfigError, match="hop_length 320 is not 10 ms"):
        _dm(store_dir, hop_length=320)
    with pytest.raises(DataConfigError, match="run extract.py first"):
        _dm(tmp_path / "nothing")
    empty = FeatureStore(tmp_path / "empty")
    empty.params = {"sample_rate": SR}
    empty.root.mkdir()
    empty.save()
    with pytest.raises(DataConfigError, match="no slices with both F0 and features"):
        _dm(empty.root)
    with pytest.raises(DataConfigError, match=r"only \d+ usable slices.*min_slices=100"):
        _dm(store_dir, min_slices=100)
    with pytest.raises(DataConfigError, match="batch_size must be >= 1"):
        _dm(store_dir, batch_size=0)


def test_missing_silence_features_fail_only_when_mutes_are_asked_for(store_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(store_dir, copy)
    FeatureStore(copy).mute_path().unlink()
    with pytest.raises(DataConfigError, match="re-run extract.py.*data.mute_slices=0"):
        _dm(copy, mute_slices=2)
    dm = _dm(copy, mute_slices=0)
    assert len(dm.train_items) == dm.dataset_length
