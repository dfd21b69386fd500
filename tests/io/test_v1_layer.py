"""Which HuBERT layer a v1 voice model reads: files as each tool writes them, our records,
explicit choices, bad values (rvc/io/v1_layer.py)."""

from __future__ import annotations

import pytest
import torch

from rvc.io.safe_load import ModelFileError
from rvc.io.v1_layer import (
    choose_v1_layer,
    features_stage_config,
    features_v1_layer,
    parse_v1_layer,
    store_v1_layer,
)
from rvc.io.voice_model import read_voice_model, save_voice_model
from tests.io.conftest import foreign_file, tiny_synth, write_rvc_checkpoint

# the keys each tool's v1 export writes besides weight/config (their model-saving code)
WEBUI = {"info": "300epoch", "sr": "40k", "f0": 1, "version": "v1"}
APPLIO_324 = {  # rvc/train/process/extract_model.py up to 3.2.4: trained on layer 9
    "epoch": 300, "step": 6000, "sr": 40000, "f0": 1, "version": "v1",
    "creation_date": "2024-08-14T10:00:00", "model_hash": "ab" * 32,
}  # fmt: skip
APPLIO_325 = {  # 3.2.5: overtrain_info (None when the detector is off), dataset_lenght (sic)
    **APPLIO_324, "overtrain_info": None, "dataset_lenght": None, "model_name": "x",
    "author": None,
}  # fmt: skip
APPLIO_328 = {  # 3.2.6-3.2.8 add embedder_model and speakers_id
    **APPLIO_325, "overtrain_info": "Smoothed loss_g 31.502 and loss_d 3.702",
    "dataset_lenght": "0:02:31", "embedder_model": "contentvec", "speakers_id": 1,
}  # fmt: skip


def _file(tmp_path, keys: dict, name: str = "m.pth"):
    path = tmp_path / name
    torch.save(foreign_file(tiny_synth(version="v1"), **keys), path)
    return read_voice_model(path)


@pytest.mark.parametrize(
    "keys,layer,why",
    [
        (WEBUI, 9, "does not say"),
        (APPLIO_324, 9, "does not say"),
        (APPLIO_325, 12, "'overtrain_info'"),
        (APPLIO_328, 12, "Applio 3.2.5-3.2.8"),
        ({**APPLIO_324, "dataset_lenght": None}, 12, "'dataset_lenght'"),
    ],
    ids=["webui", "applio-3.2.4", "applio-3.2.5", "applio-3.2.8", "misspelt-key-alone"],
)
def test_auto_takes_the_layer_each_tool_trained_on(tmp_path, keys, layer, why):
    vm = _file(tmp_path, keys)
    got, reason = choose_v1_layer(vm.metadata, "auto", str(vm.path))
    assert got == layer and why in reason
    assert choose_v1_layer(vm.metadata, None)[0] == layer  # None is auto too


@pytest.mark.parametrize("layer", [9, 12])
def test_our_files_record_the_layer_and_it_wins(tmp_path, layer):
    net = tiny_synth(version="v1")
    path = tmp_path / "ours.pth"
    meta = save_voice_model(path, net, net.config, model_name="ours", v1_layer=layer)
    assert meta["v1_layer"] == layer
    data = torch.load(path, weights_only=True)
    assert data["v1_layer"] == layer and type(data["v1_layer"]) is int
    # our record beats Applio's marker (a file of ours that also carries overtrain_info)
    data["overtrain_info"] = None
    torch.save(data, path)
    got, reason = choose_v1_layer(read_voice_model(path).metadata)
    assert (got, reason) == (layer, f"the file records v1_layer={layer}")


def test_exporter_records_nothing_it_was_not_told_and_nothing_for_v2(tmp_path):
    v1, v2 = tiny_synth(version="v1"), tiny_synth()
    save_voice_model(tmp_path / "a.pth", v1, v1.config, model_name="a", v1_layer="auto")
    save_voice_model(tmp_path / "b.pth", v2, v2.config, model_name="b", v1_layer=12)
    assert "v1_layer" not in torch.load(tmp_path / "a.pth", weights_only=True)
    assert "v1_layer" not in torch.load(tmp_path / "b.pth", weights_only=True)  # v2: last layer
    with pytest.raises(ValueError, match=r"v1_layer: 'nine' is not a layer"):
        save_voice_model(tmp_path / "c.pth", v1, v1.config, model_name="c", v1_layer="nine")
    assert not (tmp_path / "c.pth").exists()


@pytest.mark.parametrize("keys", [WEBUI, APPLIO_328], ids=["webui", "applio"])
@pytest.mark.parametrize("asked", [9, 12, "12"])
def test_an_explicit_layer_overrides_the_file(tmp_path, keys, asked):
    vm = _file(tmp_path, keys)
    found = 12 if "overtrain_info" in keys else 9
    got, reason = choose_v1_layer(vm.metadata, asked, str(vm.path))
    assert got == int(asked) and reason.startswith(f"embedder.v1_layer={got}")
    assert ("points to" in reason) == (got != found)


@pytest.mark.parametrize("bad", ["nine", 0, -1, 9.5, True, "layer12"])
def test_bad_layer_values_are_refused_with_the_choices(bad):
    with pytest.raises(ValueError, match=r"embedder.v1_layer: .* not a layer; use auto, 9 .* 12"):
        parse_v1_layer(bad)


def test_a_bad_recorded_layer_names_the_file(tmp_path):
    vm = _file(tmp_path, {**WEBUI, "v1_layer": "x"}, "broken.pth")
    with pytest.raises(ModelFileError, match=r"broken.pth: 'v1_layer': 'x' is not a layer"):
        choose_v1_layer(vm.metadata, "auto", str(vm.path))


def test_extraction_reads_9_for_auto_and_the_store_records_only_what_differs():
    assert features_v1_layer("auto") == features_v1_layer(None) == 9
    assert features_v1_layer(12) == 12
    base = {"_target_": "rvc.embedders.hubert.HubertEmbedder", "name": "contentvec", "dim": 768}
    # v2: the key is left out, so stores made before the option keep their hash
    assert features_stage_config({**base, "version": "v2", "v1_layer": 12}) == {
        **base, "version": "v2"
    }  # fmt: skip
    v1 = {**base, "version": "v1", "dim": 256}
    assert features_stage_config({**v1, "v1_layer": "auto"}) == v1  # 9: as before the option
    assert features_stage_config({**v1, "v1_layer": 9}) == v1
    rec = features_stage_config({**v1, "v1_layer": "12"})
    assert rec == {**v1, "v1_layer": 12}
    assert store_v1_layer(rec) == 12 and store_v1_layer(v1) == 9


def test_rvc_model_export_records_and_info_shows_the_layer(tmp_path, capsys):
    from rvc.io.cli import describe, main

    write_rvc_checkpoint(tmp_path / "G_10.pth", tiny_synth(version="v1"), iteration=1)
    out = tmp_path / "v1.pth"
    assert (
        main(["export", str(tmp_path / "G_10.pth"), str(out), "--name", "v", "--v1-layer", "12"])
        == 0
    )
    assert describe(out)["v1 layer"] == "12 (the file records v1_layer=12)"
    assert describe(_file(tmp_path, APPLIO_328).path)["v1 layer"].startswith("12 (an Applio 3.2.5")
    assert describe(_file(tmp_path, WEBUI, "w.pth").path)["v1 layer"].startswith("9 (RVC's layer")
    assert main(["info", str(out)]) == 0 and "v1 layer" in capsys.readouterr().out
    v2 = tiny_synth()
    save_voice_model(tmp_path / "v2.pth", v2, v2.config, model_name="v2")
    assert describe(tmp_path / "v2.pth")["v1 layer"] is None  # v2: no row
