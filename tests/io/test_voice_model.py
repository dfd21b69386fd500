"""Voice model .pth: write -> read -> same conversion; exact docs/formats.md §1 layout; old files."""

from __future__ import annotations

import datetime

import numpy as np
import pytest
import torch

from rvc.formats import SampleRateError, parse_sample_rate
from rvc.io.checkpoints import ArchitectureMismatchError
from rvc.io.safe_load import ModelFileError
from rvc.io.voice_model import (
    load_voice_model,
    read_voice_model,
    save_voice_model,
    weights_sha256,
)
from rvc.io.weight_norm_names import to_rvc_names
from tests.io.conftest import foreign_file, infer, tiny_config, tiny_synth

# fp16 storage rounds every weight to 11 significant bits; on these tiny random nets the
# waveform (peak ~0.1-0.6) then moves by ~1e-4. Allow 2e-3 (about -54 dB full scale).
FP16_ATOL = 2e-3


def _fp16_rounded(net: torch.nn.Module, vocoder: str, **kw) -> torch.nn.Module:
    ref = tiny_synth(vocoder, **kw)
    ref.load_state_dict({k: v.half().float() for k, v in net.state_dict().items()})
    return ref


@pytest.mark.parametrize("vocoder", ["HiFi-GAN", "MRF HiFi-GAN", "RefineGAN"])
def test_write_read_gives_the_same_conversion(tmp_path, vocoder):
    net = tiny_synth(vocoder)
    path = tmp_path / "voice.pth"
    meta = save_voice_model(
        path, net, net.config, model_name="voice", vocoder=vocoder, epoch=3, step=120,
        embedder_model="contentvec", author="me", dataset_length=61.5,
    )  # fmt: skip
    vm = load_voice_model(path)
    assert (vm.sample_rate, vm.version, vm.use_f0, vm.vocoder) == (40000, "v2", True, vocoder)
    assert vm.config == net.config and vm.model_name == "voice"
    assert vm.metadata["epoch"] == 3 and vm.metadata["step"] == 120 and meta["epoch"] == 3
    y_ref, y = infer(net), infer(vm.synthesizer)
    assert y.shape == y_ref.shape and torch.isfinite(y).all()
    assert (y - y_ref).abs().max() < FP16_ATOL
    # exactly the fp16-rounded network: nothing else changed on the way
    torch.testing.assert_close(y, infer(_fp16_rounded(net, vocoder)), rtol=0, atol=1e-6)


def test_written_file_has_exactly_the_rvc_layout(tmp_path):
    net = tiny_synth()
    path = tmp_path / "voice.pth"
    save_voice_model(
        path, net, net.config, model_name="voice", epoch=7, step=70, embedder_model="contentvec"
    )
    data = torch.load(path, weights_only=True)  # what RVC WebUI / Applio do
    # RVC WebUI's keys, then the metadata Applio writes (docs/formats.md §1)
    core = {"weight", "config", "info", "sr", "f0", "version"}
    metadata = {"epoch", "step", "creation_date", "model_hash", "dataset_length", "model_name",
                "author", "embedder_model", "speakers_id", "vocoder"}  # fmt: skip
    assert set(data) == core | metadata
    w = data["weight"]
    assert all(t.dtype == torch.float16 for t in w.values())
    assert not any(k.startswith("enc_q.") for k in w)
    assert not any("parametrizations" in k for k in w)
    assert "dec.ups.0.weight_g" in w and "dec.ups.0.weight_v" in w
    expected = {k for k in to_rvc_names(net.state_dict()) if not k.startswith("enc_q.")}
    assert set(w) == expected
    cfg = data["config"]
    assert type(cfg) is list and len(cfg) == 18 and cfg == tiny_config()
    assert all(type(v) in (int, float, str, list) for v in cfg)
    assert type(data["sr"]) is int and data["sr"] == 40000
    assert data["f0"] == 1 and type(data["f0"]) is int
    assert data["version"] == "v2" and data["vocoder"] == "HiFi-GAN" and data["info"] == "7epoch"
    assert (data["epoch"], data["step"], data["model_name"]) == (7, 70, "voice")
    assert data["model_hash"] == weights_sha256(w) and len(data["model_hash"]) == 64
    datetime.datetime.fromisoformat(data["creation_date"])
    assert not list(tmp_path.glob(".voice.pth*"))  # the atomic writer left no temp file


def test_old_rvc_webui_file_loads(tmp_path):
    net = tiny_synth()
    path = tmp_path / "old.pth"
    torch.save(foreign_file(net, info="300epoch", sr="40k", f0=1, version="v2"), path)
    vm = load_voice_model(path)
    assert (vm.sample_rate, vm.vocoder, vm.metadata["info"]) == (40000, "HiFi-GAN", "300epoch")
    assert vm.model_name == "old" and "epoch" not in vm.metadata
    assert (infer(vm.synthesizer) - infer(net)).abs().max() < FP16_ATOL


@pytest.mark.parametrize("case", ["v1", "no_f0", "v1_no_version_key", "fp32", "spk_mismatch"])
def test_v1_no_f0_and_odd_files_load(tmp_path, case):
    version = "v1" if case.startswith("v1") else "v2"
    use_f0 = case != "no_f0"
    net = tiny_synth(use_f0=use_f0, version=version)
    data = foreign_file(net, info="20epoch", sr=40000, f0=int(use_f0), version=version)
    if case == "v1_no_version_key":  # the first RVC releases wrote no version: v1
        del data["version"]
    if case == "fp32":
        data["weight"] = {k: v.float() for k, v in data["weight"].items()}
    if case == "spk_mismatch":  # config[15] disagreeing with emb_g: the tensor wins, as in RVC
        data["config"][15] = 109
    torch.save(data, tmp_path / "m.pth")
    vm = load_voice_model(tmp_path / "m.pth")
    assert (vm.version, vm.use_f0) == (version, use_f0)
    assert vm.synthesizer.enc_p.emb_phone.in_features == (256 if version == "v1" else 768)
    assert all(p.dtype == torch.float32 for p in vm.synthesizer.parameters())
    y = infer(vm.synthesizer)
    assert (y - infer(net)).abs().max() < FP16_ATOL


def test_bad_voice_models_give_clear_errors(tmp_path):
    net = tiny_synth()
    cases = {
        # config says 48k but the upsampling layers are 40k ones
        "wrong_cfg.pth": (
            foreign_file(net, sr=48000, f0=1, version="v2"),
            ArchitectureMismatchError,
            "dec.ups",
        ),
        "wrong_ver.pth": (
            foreign_file(net, sr=40000, f0=1, version="v1"),
            ModelFileError,
            "768-dim",
        ),
        "sr.pth": (
            foreign_file(net, sr=32000, f0=1, version="v2"),
            ModelFileError,
            "'sr' says 32000",
        ),
        "ckpt.pth": (
            {"model": net.state_dict(), "iteration": 1},
            ModelFileError,
            "rvc-model export",
        ),
        "voc.pth": (
            foreign_file(net, sr=40000, version="v2", vocoder="WaveNet"),
            ModelFileError,
            "unknown vocoder",
        ),
    }
    cases["wrong_cfg.pth"][0]["config"] = tiny_config(48000)
    for name, (data, exc, msg) in cases.items():
        torch.save(data, tmp_path / name)
        with pytest.raises(exc, match=msg) as err:
            load_voice_model(tmp_path / name)
        assert name in str(err.value)


def test_parse_sample_rate():
    assert [parse_sample_rate(v) for v in ("40k", "48K", "32000", 40000, 48000.0)] == [
        40000,
        48000,
        32000,
        40000,
        48000,
    ]
    for bad in ("fast", True, -1, None):
        with pytest.raises(SampleRateError):
            parse_sample_rate(bad)


def test_save_refuses_bad_config_and_metadata(tmp_path):
    net = tiny_synth()
    with pytest.raises(ValueError, match="18 items"):
        save_voice_model(tmp_path / "a.pth", net, net.config[:17], model_name="a")
    with pytest.raises(ValueError, match="vocoder"):
        save_voice_model(tmp_path / "a.pth", net, net.config, model_name="a", vocoder="WaveNet")
    with pytest.raises(ValueError, match="version='v1' but the model's tensors say 'v2'"):
        save_voice_model(tmp_path / "a.pth", net, net.config, model_name="a", version="v1")
    with pytest.raises(ValueError, match="use_f0=False"):
        save_voice_model(tmp_path / "a.pth", net, net.config, model_name="a", use_f0=False)
    assert not (tmp_path / "a.pth").exists()
    # numpy values (e.g. from a dataset summary) are stored as builtins other tools can read
    save_voice_model(
        tmp_path / "b.pth", net, net.config, model_name=np.str_("b"), dataset_length=np.float64(1.5)
    )
    data = torch.load(tmp_path / "b.pth", weights_only=True)  # torch's default allow-list only
    assert type(data["dataset_length"]) is float and type(data["model_name"]) is str


def test_read_without_building_and_hash_is_stable(tmp_path):
    net = tiny_synth()
    save_voice_model(tmp_path / "a.pth", net, net.config, model_name="a")
    save_voice_model(tmp_path / "b.pth", net.state_dict(), net.config, model_name="b")
    a, b = read_voice_model(tmp_path / "a.pth"), read_voice_model(tmp_path / "b.pth")
    assert a.synthesizer is None
    assert a.metadata["model_hash"] == b.metadata["model_hash"]  # same weights, same hash
    other = tiny_synth(seed=1)
    save_voice_model(tmp_path / "c.pth", other, other.config, model_name="a")
    assert read_voice_model(tmp_path / "c.pth").metadata["model_hash"] != a.metadata["model_hash"]


def _full_size_40k() -> torch.nn.Module:
    from rvc.io.detect import standard_config
    from rvc.io.voice_model import build_synthesizer

    torch.manual_seed(0)
    return build_synthesizer(standard_config(40000), True).eval()


def test_full_size_file_layout_and_weights(tmp_path):
    net = _full_size_40k()
    save_voice_model(tmp_path / "full.pth", net, net.config, model_name="full")
    vm = read_voice_model(tmp_path / "full.pth")
    # docs/formats.md §3: 27.5 M parameters outside enc_q for v2 40k HiFi-GAN
    assert 27.4e6 < sum(t.numel() for t in vm.weights.values()) < 27.6e6
    assert vm.config == [1025, 32, 192, 192, 768, 2, 6, 3, 0, "1", [3, 7, 11], [[1, 3, 5]] * 3,
                         [10, 10, 2, 2], 512, [16, 16, 4, 4], 109, 256, 40000]  # fmt: skip
    ref = {k: v for k, v in net.state_dict().items() if not k.startswith("enc_q.")}
    assert set(vm.weights) == set(ref)
    for k, v in ref.items():
        assert torch.equal(vm.weights[k], v.half())


@pytest.mark.slow
def test_full_size_write_read_gives_the_same_conversion(tmp_path):
    net = _full_size_40k()
    save_voice_model(tmp_path / "full.pth", net, net.config, model_name="full")
    vm = load_voice_model(tmp_path / "full.pth")
    y_ref, y = infer(net, frames=8), infer(vm.synthesizer, frames=8)
    assert y.shape == (1, 1, 8 * 400) and (y - y_ref).abs().max() < FP16_ATOL
