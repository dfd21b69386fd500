"""The model stages read the next batch's audio in a background thread while the current batch
is in the model, and a slice that cannot be read still fails only itself."""

from __future__ import annotations

import threading

import numpy as np

from rvc.extract import features
from rvc.extract.run import run
from tests.conftest import compose


class _FakeF0:
    """Answers 100 Hz; its first batch waits until the second batch's audio has been read."""

    def __init__(self, second_read: threading.Event):
        self.second_read, self.calls = second_read, 0

    def compute_batch(self, audios):
        self.calls += 1
        if self.calls == 1 and not self.second_read.wait(10):
            raise AssertionError("batch 2 was not read while batch 1 was in the model")
        return [np.full(len(a) // 160, 100.0, dtype=np.float32) for a in audios]


def _sliced_store(tmp_path, voice_dir):
    cfg = compose("extract", ["name=t", f"paths.root={tmp_path}", f"inputs=[{voice_dir}]",
                              "stages=[slice]", "device.num_workers=1"])  # fmt: skip
    return run(cfg).store


def test_next_batch_is_read_while_the_model_runs(tmp_path, voice_dir, monkeypatch):
    store = _sliced_store(tmp_path, voice_dir)
    batches = list(features._batches(list(store.slices.values()), 2))
    assert len(batches) >= 2
    second = {r.name for r in batches[1]}
    readers: dict[str, str] = {}
    second_read = threading.Event()
    real = features._load16k

    def load(st, rec):
        audio = real(st, rec)
        readers[rec.name] = threading.current_thread().name
        if second <= readers.keys():
            second_read.set()
        return audio

    monkeypatch.setattr(features, "_load16k", load)
    model = _FakeF0(second_read)
    failures = features.run_stage(store, "f0", {"name": "fake"}, lambda d: model, ["cpu"], 2)
    assert failures == []
    assert model.calls == len(batches)  # no batch fell back to slice-by-slice
    assert readers.keys() == store.slices.keys()
    assert all(name.startswith("read-ahead") for name in readers.values())
    for rec in store.slices.values():
        assert np.load(store.path("f0", rec)).max() == 100.0


def test_an_unreadable_slice_fails_alone(tmp_path, voice_dir):
    store = _sliced_store(tmp_path, voice_dir)
    bad = sorted(store.slices.values(), key=lambda r: r.n_samples_16k)[0]
    store.path("sliced16k", bad).write_bytes(b"not audio")
    ready = threading.Event()
    ready.set()
    failures = features.run_stage(
        store, "f0", {"name": "fake"}, lambda d: _FakeF0(ready), ["cpu"], 4
    )
    assert [name for name, _ in failures] == [bad.name]
    done = [r for r in store.slices.values() if r.name != bad.name]
    assert all(store.path("f0", r).exists() for r in done)
