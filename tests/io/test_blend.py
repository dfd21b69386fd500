"""`rvc-model blend`: (1 - ratio)·A + ratio·B of two tiny voice models built here."""

from __future__ import annotations

import pytest
import torch

from rvc.formats import file_sha256
from rvc.io.blend import BlendError, blend
from rvc.io.cli import describe, main
from rvc.io.voice_model import load_voice_model, read_voice_model, save_voice_model
from tests.io.conftest import infer, tiny_synth


def _save(path, net, name, **kw):
    save_voice_model(path, net, net.config, model_name=name, embedder_model="contentvec", **kw)
    return path


@pytest.fixture
def parents(tmp_path):
    a = _save(tmp_path / "a.pth", tiny_synth(seed=1), "Alice")
    b = _save(tmp_path / "b.pth", tiny_synth(seed=2), "Bob")
    return a, b


@pytest.mark.parametrize("ratio, parent", [(0.0, 0), (1.0, 1)])
def test_ratio_0_and_1_give_the_parents_exactly(tmp_path, parents, ratio, parent):
    out = tmp_path / "out.pth"
    blend(*parents, out, ratio=ratio)
    got, want = read_voice_model(out).weights, read_voice_model(parents[parent]).weights
    assert got.keys() == want.keys()
    for key in want:
        assert got[key].dtype == torch.float16 and torch.equal(got[key], want[key]), key


def test_half_is_the_mean_and_metadata_records_both_parents(tmp_path, parents):
    out = tmp_path / "out.pth"
    meta = blend(*parents, out, ratio=0.5, author="me")
    a, b = read_voice_model(parents[0]), read_voice_model(parents[1])
    got = read_voice_model(out)
    for key, t in got.weights.items():
        mean = ((a.weights[key].float() + b.weights[key].float()) / 2).half()
        assert torch.equal(t, mean), key
    md = got.metadata
    assert md["blend"]["ratio"] == 0.5 and md["model_name"] == "Alice+Bob" and md["author"] == "me"
    names = [p["name"] for p in md["blend"]["parents"]]
    assert names == ["Alice", "Bob"]
    assert md["blend"]["parents"][1]["file_sha256"] == file_sha256(parents[1])
    assert md["blend"]["parents"][0]["weights_sha256"] == a.metadata["model_hash"]
    assert (md["sr"], md["version"], md["f0"], md["vocoder"]) == (40000, "v2", 1, "HiFi-GAN")
    assert md["embedder_model"] == "contentvec" and meta["model_hash"] == md["model_hash"]


def test_the_blend_reloads_and_converts(tmp_path, parents):
    out = tmp_path / "out.pth"
    assert main(["blend", *map(str, parents), str(out), "--ratio", "0.3"]) == 0
    vm = load_voice_model(out)
    wav = infer(vm.synthesizer)
    assert wav.shape == (1, 1, 12 * 400) and torch.isfinite(wav).all()
    assert vm.metadata["blend"]["ratio"] == pytest.approx(0.3)
    assert describe(out)["blend"] == "Alice ×0.7 + Bob ×0.3"


@pytest.mark.parametrize(
    "other, what",
    [
        (dict(sr=32000), "sample rate 40000 vs 32000"),
        (dict(vocoder="MRF HiFi-GAN"), "vocoder HiFi-GAN vs MRF HiFi-GAN"),
        (dict(version="v1"), "version v2 vs v1"),
        (dict(use_f0=False), "F0 yes vs no"),
    ],
)
def test_mismatched_parents_are_refused(tmp_path, parents, other, what, capsys):
    b = _save(tmp_path / "other.pth", tiny_synth(seed=3, **other), "Other")
    with pytest.raises(BlendError, match=what):
        blend(parents[0], b, tmp_path / "out.pth")
    assert main(["blend", str(parents[0]), str(b), str(tmp_path / "out.pth")]) == 1
    err = capsys.readouterr().err.strip()
    assert "a.pth" in err and "other.pth" in err and what in err and "\n" not in err
    assert not (tmp_path / "out.pth").exists()


def test_other_embedders_are_refused(tmp_path, parents):
    spin = tmp_path / "spin.pth"
    net = tiny_synth(seed=3)
    save_voice_model(spin, net, net.config, model_name="S", embedder_model="spin")
    with pytest.raises(BlendError, match="embedder contentvec vs spin"):
        blend(parents[0], spin, tmp_path / "out.pth")


@pytest.mark.parametrize("ratio", [-0.1, 1.5, float("nan")])
def test_ratio_outside_0_1_is_refused(tmp_path, parents, ratio):
    with pytest.raises(ValueError, match=r"ratio must be in \[0, 1\]"):
        blend(*parents, tmp_path / "out.pth", ratio=ratio)
