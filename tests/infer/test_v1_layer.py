"""v1 models convert on the HuBERT layer they were trained on: Applio 3.2.5-3.2.8 files on 12,
WebUI files on 9, unless embedder.v1_layer says otherwise; the chosen layer's features are the
ones that reach the synthesizer."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from rvc.infer import ConverterLoadError, ConvertOptions, load_converter
from rvc.infer.load import build_embedder, group_config
from rvc.io.voice_model import read_voice_model
from tests.conftest import compose
from tests.embedders.conftest import save_tiny
from tests.infer.conftest import voice16k
from tests.io.conftest import foreign_file, tiny_synth
from tests.io.test_v1_layer import APPLIO_328, WEBUI


@pytest.fixture(scope="module")
def v1_files(tmp_path_factory):
    """One tiny v1 network saved twice (as Applio 3.2.8 and as the WebUI write it) and a tiny
    12-layer HuBERT with a 256-dim final_proj, so layers 9 and 12 both exist."""
    root = tmp_path_factory.mktemp("v1")
    save_tiny(root / "hubert", final_proj=True, num_hidden_layers=12, classifier_proj_size=256)
    net = tiny_synth(version="v1", seed=4)
    for name, keys in (("applio", APPLIO_328), ("webui", WEBUI)):
        torch.save(foreign_file(net, **keys), root / f"{name}.pth")
    return root


def _embedder(root, layer="auto"):
    node = group_config("embedder", "custom")
    node.local_path, node.v1_layer = str(root / "hubert"), layer
    return node


def _load(root, name: str, layer="auto"):
    return load_converter(
        root / f"{name}.pth", index=None, f0="pm", embedder=_embedder(root, layer)
    )


def _convert(root, name: str, layer="auto"):
    """(converter, output, the features the synthesizer was given)."""
    conv = _load(root, name, layer)
    given, synthesize = [], conv._synthesize
    conv._synthesize = lambda feats, *a: given.append(feats.copy()) or synthesize(feats, *a)
    audio = voice16k(1.0)[1_000:11_000]  # 0.6 s of voice: short, as the vocoder is the cost
    y = conv.convert(audio, ConvertOptions(pad_s=0.2), progress=False)  # less context: faster
    return conv, y, np.concatenate(given)


def test_each_file_converts_on_its_own_layer_and_the_option_overrides(v1_files, quiet, caplog):
    with caplog.at_level(logging.INFO, logger="rvc.infer.load"):
        applio, y_applio, f_applio = _convert(v1_files, "applio")
    lines = [r.getMessage() for r in caplog.records if "HuBERT layer" in r.getMessage()]
    assert lines == [
        "v1 model applio.pth: HuBERT layer 12 (an Applio 3.2.5-3.2.8 file (it has "
        "'overtrain_info'); Applio trained v1 on layer 12)"
    ]
    webui, y_webui, f_webui = _convert(v1_files, "webui")
    assert (applio.embedder.v1_layer, webui.embedder.v1_layer) == (12, 9)
    assert np.isfinite(y_applio).all() and np.abs(y_applio).max() > 0
    # same network and input: the synthesizer gets other features, and its output changes
    # (runs in one process are deterministic: equal layers give equal arrays, see below)
    assert np.linalg.norm(f_applio - f_webui) > 0.1 * np.linalg.norm(f_webui)
    assert np.abs(y_applio - y_webui).max() > 1e-5
    forced, y_webui_12, f_webui_12 = _convert(v1_files, "webui", 12)
    assert forced.embedder.v1_layer == 12
    np.testing.assert_array_equal(f_webui_12, f_applio)
    np.testing.assert_array_equal(y_webui_12, y_applio)
    assert _load(v1_files, "applio", 9).embedder.v1_layer == 9


def test_infer_option_alone_sets_the_models_own_embedder(v1_files, monkeypatch):
    """infer.py embedder.v1_layer=9 with no embedder= (the model's metadata names one)."""
    from rvc.embedders.hubert import HubertEmbedder

    monkeypatch.setattr(HubertEmbedder, "load", lambda self: self)  # contentvec is hub-only
    vm = read_voice_model(v1_files / "applio.pth")
    for overrides, layer in (([], 12), (["embedder.v1_layer=9"], 9)):
        cfg = compose("infer", ["voice=x", "input=y", *overrides])
        emb = build_embedder(vm, cfg.embedder)
        assert (emb.name, emb.version, emb.dim, emb.v1_layer) == ("contentvec", "v1", 256, layer)
    # an embedder without layers ignores the option (our demo models name spectral)
    spectral = OmegaConf.merge(group_config("embedder", "spectral"), {"v1_layer": "auto"})
    assert build_embedder(vm, spectral).dim == 256


def test_a_bad_layer_is_one_clear_error(v1_files):
    with pytest.raises(ConverterLoadError, match=r"embedder.v1_layer: 'ten' is not a layer"):
        load_converter(v1_files / "webui.pth", index=None, f0="pm",
                       embedder=_embedder(v1_files, "ten"))  # fmt: skip


def test_an_embedder_built_by_the_caller_is_kept_with_a_warning_if_off(v1_files, caplog):
    from rvc.embedders.hubert import HubertEmbedder

    vm = read_voice_model(v1_files / "applio.pth")
    emb = HubertEmbedder(local_path=v1_files / "hubert", version="v1", dim=256, v1_layer=9)
    with caplog.at_level(logging.WARNING, logger="rvc.infer.load"):
        assert build_embedder(vm, emb) is emb
    assert any("reads HuBERT layer 9, but the file points to 12" in m for m in caplog.messages)
    caplog.clear()
    emb.v1_layer = 12
    with caplog.at_level(logging.WARNING, logger="rvc.infer.load"):
        assert build_embedder(vm, emb) is emb
    assert not caplog.messages
