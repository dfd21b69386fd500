"""Extraction stores the embedder's features of 3 s of silence for training's mute slices."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rvc.data.store import MissingMuteError
from rvc.embedders.spectral import SpectralEmbedder
from rvc.extract.run import run
from tests.conftest import compose

FAST = ["f0=pm", "embedder=spectral", "device.num_workers=1"]


def _run(root: Path, voice_dir: Path, *extra: str):
    return run(
        compose("extract", ["name=t", f"paths.root={root}", f"inputs=[{voice_dir}]", *FAST, *extra])
    )


def test_features_stage_writes_and_records_the_silence_features(tmp_path, voice_dir):
    store = _run(tmp_path, voice_dir).store
    assert store.stages["features"]["mute"] is True
    mute = store.load_mute_features()
    emb = SpectralEmbedder()
    assert store.mute_path() == store.root / "mute" / "features.npy"
    assert mute.dtype == np.float16 and mute.shape == (emb.n_frames(48000), 768)
    np.testing.assert_array_equal(mute, emb.embed(np.zeros(48000)).astype(np.float16))
    # recorded in the manifest on disk, not just in memory
    manifest = json.loads((store.root / "manifest.json").read_text())
    assert manifest["stages"]["features"]["mute"] is True


def test_mute_is_redone_with_the_embedder_and_when_missing(tmp_path, voice_dir):
    first = _run(tmp_path, voice_dir).store
    mtime = first.mute_path().stat().st_mtime_ns
    rec = next(iter(first.slices.values()))
    feats = first.load_features(rec)
    again = _run(tmp_path, voice_dir).store  # everything current: the file is kept
    assert again.mute_path().stat().st_mtime_ns == mtime

    other = _run(tmp_path, voice_dir, "embedder.seed=1").store  # new features config
    assert not np.array_equal(other.load_features(rec), feats)  # really another embedder
    assert other.stages["features"]["mute"] is True
    assert other.mute_path().stat().st_mtime_ns != mtime

    other.mute_path().unlink()  # lost file, slices all current: the next run restores it
    restored = _run(tmp_path, voice_dir, "embedder.seed=1").store
    assert restored.mute_path().exists() and restored.stages["features"]["mute"] is True


def test_load_mute_features_is_a_clear_error_when_absent_or_not_recorded(tmp_path, voice_dir):
    store = _run(tmp_path, voice_dir).store
    store.stages["features"].pop("mute")  # file there, manifest does not vouch for it
    with pytest.raises(MissingMuteError, match="not recorded.*re-run extract.py.*mute_slices=0"):
        store.load_mute_features()
    store.stages["features"]["mute"] = True
    store.mute_path().unlink()
    with pytest.raises(FileNotFoundError, match="file missing.*data.mute_slices=0"):
        store.load_mute_features()
    # only the F0 stage run: no features, no silence features
    f0_only = _run(tmp_path / "b", voice_dir, "stages=[slice,f0]").store
    with pytest.raises(MissingMuteError, match=str(f0_only.root)):
        f0_only.load_mute_features()


@pytest.mark.slow  # the sharding itself is in the default suite (test_pipeline's sharded test)
def test_sharded_devices_write_the_silence_features_on_a_worker(tmp_path, voice_dir):
    two = _run(tmp_path, voice_dir, "device.devices=2").store
    assert two.stages["features"]["mute"] is True
    expected = SpectralEmbedder().embed(np.zeros(48000)).astype(np.float16)
    np.testing.assert_array_equal(two.load_mute_features(), expected)
