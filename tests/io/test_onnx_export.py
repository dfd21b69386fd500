"""`rvc-model onnx`: onnxruntime gives `Synthesizer.infer`'s audio, for tiny models built here.

Tolerance: max |onnx - torch| <= 1e-5 on waveforms of peak 0.005-0.7, fp32 both sides (measured
<= 3e-7: the same ops in another order). Equality needs the same noise: the prior noise goes in
as `rnd` (torch draws it from the same seed), and the NSF sources' own draws are switched off on
both sides (`quiet_sources`, `source_noise=False`); the default export, with them, is checked
for its random ops, shapes and closeness separately. Without the `slow` ones: ~14 s on 2 quiet
cores, all ~17 s (about three times that while another job shares the cores).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rvc.io.cli import main
from rvc.io.onnx_export import (
    OnnxSynthesizer,
    example_inputs,
    export_onnx,
    quiet_sources,
)
from rvc.io.voice_model import load_voice_model, save_voice_model
from rvc.models.synthesizer import INFER_NOISE_SCALE
from tests.io.conftest import tiny_synth

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

ATOL = 1e-5
EXPORT_FRAMES, RUN_FRAMES = 16, 29  # run at another length than traced: the T axis is dynamic


def _voice(tmp_path, vocoder="HiFi-GAN", use_f0=True, version="v2", **kw):
    sr = 32000 if vocoder == "RefineGAN" else 40000  # RefineGAN exists at 32k only
    net = tiny_synth(vocoder, sr=sr, use_f0=use_f0, version=version)
    path = tmp_path / f"{version}.pth"
    save_voice_model(path, net, net.config, model_name="tiny", embedder_model="contentvec", **kw)
    return load_voice_model(path)


def _session(path):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1  # tiny graphs: its spinning pool would only slow a busy machine
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _run(path, names, inputs):
    sess = _session(path)
    assert [i.name for i in sess.get_inputs()] == names
    assert [o.name for o in sess.get_outputs()] == ["audio"]
    return sess.run(None, {n: t.numpy() for n, t in zip(names, inputs, strict=True)})[0]


SEED = 11


def _inputs(vm, layout="webui"):
    """Random inputs of RUN_FRAMES; rnd is the draw `infer` makes under SEED, scaled as the
    WebUI's runtime scales it."""
    inputs = example_inputs(vm.synthesizer, layout, RUN_FRAMES, seed=3)
    if layout == "webui":
        torch.manual_seed(SEED)
        inputs[-1] = torch.randn(1, vm.config[2], RUN_FRAMES) * INFER_NOISE_SCALE
    return inputs


def _torch_infer(net, inputs, seed=SEED):
    """`Synthesizer.infer` on the same inputs, its prior noise the `rnd` drawn from `seed`."""
    x = dict(zip(OnnxSynthesizer(net).input_names, inputs, strict=True))
    torch.manual_seed(seed)
    with quiet_sources(net):
        wav, _ = net.infer(x["phone"], x["phone_lengths"], x.get("pitch"), x.get("pitchf"), x["ds"])
    return wav.numpy()


@pytest.mark.parametrize(
    "vocoder, use_f0, version",
    [
        ("HiFi-GAN", True, "v2"),
        pytest.param("HiFi-GAN", True, "v1", marks=pytest.mark.slow),  # v1: no-F0 case below
        ("HiFi-GAN", False, "v2"),
        ("HiFi-GAN", False, "v1"),
        ("MRF HiFi-GAN", True, "v2"),
        # v1 differs from v2 only in emb_phone's width, checked with HiFi-GAN above
        pytest.param("MRF HiFi-GAN", True, "v1", marks=pytest.mark.slow),
        ("RefineGAN", True, "v2"),
        pytest.param("RefineGAN", True, "v1", marks=pytest.mark.slow),
    ],
)
def test_onnxruntime_equals_torch_infer(tmp_path, vocoder, use_f0, version):
    vm = _voice(tmp_path, vocoder, use_f0, version)
    out = tmp_path / "voice.onnx"
    info = export_onnx(vm, out, source_noise=False, frames=EXPORT_FRAMES)
    want_names = ["phone", "phone_lengths", "pitch", "pitchf", "ds", "rnd"]
    if not use_f0:
        want_names = ["phone", "phone_lengths", "ds", "rnd"]
    assert info["inputs"] == want_names
    inputs = _inputs(vm)
    got = _run(out, want_names, inputs)
    want = _torch_infer(vm.synthesizer, inputs)
    hop = vm.synthesizer.hop_length
    assert got.shape == want.shape == (1, 1, RUN_FRAMES * hop)
    np.testing.assert_allclose(got, want, rtol=0, atol=ATOL)


@pytest.mark.parametrize("vocoder", ["HiFi-GAN", "RefineGAN"])  # RefineGAN: AdaIN noise too
def test_the_default_export_draws_the_source_noise_inside(tmp_path, vocoder):
    vm = _voice(tmp_path, vocoder)
    out = tmp_path / "voice.onnx"
    export_onnx(vm, out, frames=EXPORT_FRAMES)
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert ops & {"RandomNormalLike", "RandomNormal"}, "NSF noise should be drawn in the graph"
    inputs = _inputs(vm)
    names = OnnxSynthesizer(vm.synthesizer).input_names
    sess = _session(out)
    feed = {n: t.numpy() for n, t in zip(names, inputs, strict=True)}
    a, b = sess.run(None, feed)[0], sess.run(None, feed)[0]
    assert a.shape == (1, 1, RUN_FRAMES * vm.synthesizer.hop_length) and np.isfinite(a).all()
    # fresh noise per run (onnxruntime seeds each session alike: two sessions repeat it)
    assert not np.array_equal(a, b)
    quiet = _torch_infer(vm.synthesizer, inputs)  # rnd is an input: only the NSF noise differs
    assert np.abs(a - quiet).max() < 0.1 * np.abs(quiet).max()


def test_w_okada_layout_and_metadata(tmp_path):
    vm = _voice(tmp_path, version="v1", v1_layer=9)
    out = tmp_path / "voice.onnx"
    info = export_onnx(vm, out, layout="w-okada", frames=EXPORT_FRAMES)
    assert info["inputs"] == ["feats", "p_len", "pitch", "pitchf", "sid"]
    sess = _session(out)
    shapes = {i.name: (i.shape, i.type) for i in sess.get_inputs()}
    assert shapes["feats"] == ([1, "T", 256], "tensor(float)")
    assert shapes["pitch"] == ([1, "T"], "tensor(int64)")
    assert shapes["sid"] == ([1], "tensor(int64)")
    meta = json.loads(sess.get_modelmeta().custom_metadata_map["metadata"])
    want = {"samplingRate": 40000, "f0": True, "embChannels": 256, "embedder": "contentvec"}
    assert {k: meta[k] for k in want} == want
    assert meta["embOutputLayer"] == 9 and meta["useFinalProj"] is True
    assert meta["rvc"]["vocoder"] == "HiFi-GAN" and meta["rvc"]["layout"] == "w-okada"
    inputs = _inputs(vm, "w-okada")
    wav = sess.run(None, {n: t.numpy() for n, t in zip(info["inputs"], inputs, strict=True)})[0]
    assert wav.shape == (1, 1, RUN_FRAMES * 400) and np.isfinite(wav).all()


def test_cli_writes_an_onnx_file_and_errors_are_one_line(tmp_path, capsys):
    _voice(tmp_path)
    assert main(["onnx", str(tmp_path / "v2.pth"), str(tmp_path / "v.onnx")]) == 0
    assert "phone, phone_lengths, pitch, pitchf, ds, rnd -> audio" in capsys.readouterr().out
    onnx.checker.check_model(str(tmp_path / "v.onnx"))
    assert onnx.load(str(tmp_path / "v.onnx")).opset_import[0].version == 17
    assert main(["onnx", str(tmp_path / "v2.pth"), str(tmp_path / "w.onnx"), "--opset", "12"]) == 1
    err = capsys.readouterr().err.strip()
    assert "opset >= 13" in err and "\n" not in err and not (tmp_path / "w.onnx").exists()


@pytest.mark.slow
def test_the_webui_opset_13_exports_too(tmp_path):
    vm = _voice(tmp_path, "RefineGAN")  # the vocoder with the most ops
    out = tmp_path / "voice.onnx"
    info = export_onnx(vm, out, opset=13, source_noise=False, frames=EXPORT_FRAMES)
    assert onnx.load(str(out)).opset_import[0].version == 13
    inputs = _inputs(vm)
    got = _run(out, info["inputs"], inputs)
    np.testing.assert_allclose(got, _torch_infer(vm.synthesizer, inputs), rtol=0, atol=ATOL)
