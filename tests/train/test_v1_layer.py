"""Training v1 takes the HuBERT layer of the store's features, refuses another, and the
exported `.pth` records it, so conversion reads the same layer (rvc/io/v1_layer.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hydra.utils import instantiate

from rvc.io.v1_layer import choose_v1_layer
from rvc.io.voice_model import read_voice_model
from rvc.train.run import TrainError, _pin_v1_layer
from tests.conftest import compose
from tests.io.conftest import tiny_synth


def _cfg(tmp_path, *overrides: str):
    return compose("train", [
        "name=t", f"paths.root={tmp_path}", f"out_dir={tmp_path / 'run'}", "model=debug",
        "embedder=custom", f"embedder.local_path={tmp_path}", "embedder.version=v1",
        "embedder.dim=256", "pretrained=none", *overrides,
    ])  # fmt: skip


def _store(tmp_path, **recorded):
    """What `_pin_v1_layer` reads of a store: the features' recorded embedder config."""
    made = {"_target_": "rvc.embedders.hubert.HubertEmbedder", "name": "custom",
            "version": "v1", "dim": 256, **recorded}  # fmt: skip
    return SimpleNamespace(root=tmp_path / "store", stages={"features": {"config": made}})


@pytest.mark.parametrize("recorded,layer", [({}, 9), ({"v1_layer": 12}, 12)])
def test_the_exported_model_records_the_stores_layer(tmp_path, recorded, layer):
    cfg = _cfg(tmp_path)
    _pin_v1_layer(cfg, _store(tmp_path, **recorded))
    assert cfg.embedder.v1_layer == layer
    export = instantiate(cfg.callbacks.voice_model)
    assert export.v1_layer == layer
    trainer = SimpleNamespace(current_epoch=0, global_step=8, optimizers=[0, 1], datamodule=None)
    path = export.export(trainer, SimpleNamespace(generator=tiny_synth(version="v1")), export.path)
    vm = read_voice_model(path)
    assert vm.metadata["v1_layer"] == layer and vm.metadata["step"] == 4
    assert choose_v1_layer(vm.metadata) == (layer, f"the file records v1_layer={layer}")


def test_an_explicit_layer_must_be_the_stores(tmp_path):
    cfg = _cfg(tmp_path, "embedder.v1_layer=9")
    with pytest.raises(TrainError, match=r"store .* HuBERT layer 12, but embedder.v1_layer=9"):
        _pin_v1_layer(cfg, _store(tmp_path, v1_layer=12))
    cfg = _cfg(tmp_path, "embedder.v1_layer=12")
    _pin_v1_layer(cfg, _store(tmp_path, v1_layer=12))
    assert cfg.embedder.v1_layer == 12


def test_v2_and_layerless_embedders_are_left_alone(tmp_path):
    v2 = _cfg(tmp_path, "embedder.version=v2", "embedder.dim=768")
    _pin_v1_layer(v2, _store(tmp_path, v1_layer=12))
    assert v2.embedder.v1_layer == "auto"
    spectral = compose(
        "train",
        [
            "name=t",
            f"paths.root={tmp_path}",
            f"out_dir={tmp_path}",
            "embedder=spectral",
            "embedder.version=v1",
            "embedder.dim=256",
        ],
    )
    _pin_v1_layer(spectral, _store(tmp_path))
    assert "v1_layer" not in spectral.embedder  # SpectralEmbedder takes no layer
    assert instantiate(spectral.callbacks.voice_model).v1_layer is None
