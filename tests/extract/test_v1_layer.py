"""extract.py reads v1 features from the layer asked (auto: RVC's 9) and the store says which."""

from __future__ import annotations

import logging

import numpy as np
import soundfile as sf

from rvc.embedders.hubert import HubertEmbedder
from rvc.extract.run import run
from tests.conftest import compose, voiced_clip, write
from tests.embedders.conftest import PROJ, save_tiny


def _extract(tmp_path, *extra: str):
    cfg = compose("extract", [
        "name=t", f"paths.root={tmp_path}", f"inputs=[{tmp_path / 'in'}]", "f0=pm",
        "embedder=custom", f"embedder.local_path={tmp_path / 'hubert'}", "embedder.version=v1",
        f"embedder.dim={PROJ}", "device.num_workers=1", *extra,
    ])  # fmt: skip
    return run(cfg).store


def test_v1_features_come_from_the_asked_layer_and_the_store_records_it(tmp_path, caplog):
    write(tmp_path / "in" / "a.wav", voiced_clip(40000, 150.0, segments=(1.4,)), 40000)
    save_tiny(tmp_path / "hubert", final_proj=True, num_hidden_layers=12)
    direct = {
        n: HubertEmbedder(local_path=tmp_path / "hubert", version="v1", dim=PROJ, v1_layer=n)
        for n in (9, 12)
    }

    def nearest(store) -> set[int]:  # the layer each stored slice's features match
        out = set()
        for rec in store.slices.values():
            stored = np.load(store.path("features", rec)).astype(np.float32)
            audio, _ = sf.read(store.path("sliced16k", rec), dtype="float32")
            err = {n: np.abs(e.embed(audio) - stored).max() for n, e in direct.items()}
            assert min(err.values()) < 1e-2 < max(err.values())  # fp16 storage vs other layer
            out.add(min(err, key=err.get))
        return out

    with caplog.at_level(logging.INFO, logger="rvc.extract.run"):
        store = _extract(tmp_path, "embedder.v1_layer=12")
    assert "v1 features: final_proj of HuBERT layer 12 (embedder.v1_layer)" in caplog.messages
    assert store.stages["features"]["config"]["v1_layer"] == 12
    assert nearest(store) == {12}
    # auto: RVC's 9, the stage redone, recorded as stores made before the option (no key)
    store = _extract(tmp_path)
    assert "v1_layer" not in store.stages["features"]["config"]
    assert nearest(store) == {9}
