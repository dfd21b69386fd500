"""Benchmark end-to-end voice conversion (`rvc.infer.VoiceConverter.convert`); one JSON line.

Real-size networks with random weights, so it runs offline: an RMVPE-sized F0 net
(`rvc.f0.rmvpe_net.RMVPENet`), a HuBERT-base-sized embedder (transformers' default
`HubertConfig`, saved to a temp folder and loaded by `HubertEmbedder`) and the 40k v2 HiFi-GAN
NSF synthesizer of `conf/model/40k.yaml`, on a synthetic voice (`rvc.demo.voice`) of
`--seconds`. Times each stage (F0, features, synthesis) and the whole `convert`, cold (first
call at this length) and warm (median of `--runs`). RTF = seconds of compute / seconds of audio.

`--webui PATH` (an RVC WebUI checkout at the commit in tests/infer/fixtures/README.md, outside
this repository) times the WebUI's `Pipeline.pipeline` on the same weights in the same run:
their RMVPE class loading our random RMVPE weights, the same transformers HuBERT (their fairseq
loader is replaced by an adapter) and their synthesizer class with our synthesizer's weights.

    python bench/convert.py --threads 2                       # ours, 10 s on 2 CPU threads
    python bench/convert.py --threads 2 --webui /work/ref/webui
    python bench/convert.py --device cuda --seconds 30
    python bench/convert.py --threads 2 --precision auto      # bf16 on AMX / AVX-512-bf16 CPUs
    python bench/convert.py --threads 2 --onnx                # + synthesizer: onnxruntime vs torch

`--onnx` (needs the `onnx` extra) also times the synthesizer alone on `--seconds` of random
features: torch's `Synthesizer.infer` (fp32; in one call, and with the vocoder in cache-sized
pieces as the converter runs long chunks) against onnxruntime running the `rvc-model onnx`
export of the same voice model (webui layout) with as many threads, on the CPU.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
import torch
from kernels import kernel_report  # bench/: scripts share helpers

from rvc.utils.device import cpu_description

ROOT = Path(__file__).resolve().parents[1]


def _timed(fn, *a, **kw) -> tuple[float, object]:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t = time.perf_counter()
    out = fn(*a, **kw)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - t, out


class _StageClock:
    """Wraps a callable and adds up the seconds spent in it."""

    def __init__(self, fn):
        self.fn, self.seconds = fn, 0.0

    def __call__(self, *a, **kw):
        dt, out = _timed(self.fn, *a, **kw)
        self.seconds += dt
        return out


def build_ours(device: str, work: Path, precision: str = "fp32"):
    """A VoiceConverter with real-size random networks (no downloads)."""
    from transformers import HubertConfig, HubertModel

    from rvc.embedders.hubert import HubertEmbedder
    from rvc.f0.rmvpe import RMVPEEstimator
    from rvc.f0.rmvpe_net import RMVPENet
    from rvc.infer.converter import VoiceConverter
    from rvc.io.voice_model import load_voice_model, save_voice_model
    from rvc.models.layouts import standard_config
    from rvc.models.synthesizer import Synthesizer

    torch.manual_seed(0)
    HubertModel(HubertConfig()).save_pretrained(work / "hubert", safe_serialization=True)
    torch.save(RMVPENet().state_dict(), work / "rmvpe.pt")
    cfg = standard_config(40000)  # conf/model/40k.yaml's generator (rvc/models/layouts.py)
    save_voice_model(work / "v.pth", Synthesizer(*cfg, use_f0=True, text_enc_hidden_dim=768), cfg,
                     model_name="bench", embedder_model="contentvec")  # fmt: skip
    vm = load_voice_model(work / "v.pth", device=device)
    emb = HubertEmbedder(
        local_path=work / "hubert", weights="model.safetensors", device=device
    ).load()
    f0 = RMVPEEstimator(model_path=work / "rmvpe.pt", device=device)
    return VoiceConverter(vm, emb.to(device), f0, None, device, precision), work


def bench_ours(conv, audio: np.ndarray, runs: int) -> dict:
    from rvc.infer import ConvertOptions

    opts = ConvertOptions(index_rate=0.0)
    clocks = {"f0": _StageClock(conv.f0.compute), "features": _StageClock(conv._features),
              "synthesis": _StageClock(conv._synthesize)}  # fmt: skip
    conv.f0.compute, conv._features, conv._synthesize = (
        clocks["f0"],
        clocks["features"],
        clocks["synthesis"],
    )
    cold, _ = _timed(conv.convert, audio, opts, progress=False)
    cold_stages = {k: c.seconds for k, c in clocks.items()}
    totals, stages = [], {k: [] for k in clocks}
    for _ in range(runs):
        for c in clocks.values():
            c.seconds = 0.0
        dt, _ = _timed(conv.convert, audio, opts, progress=False)
        totals.append(dt)
        for k, c in clocks.items():
            stages[k].append(c.seconds)
    secs = len(audio) / 16000
    warm = statistics.median(totals)
    return {
        "cold_s": round(cold, 3), "warm_s": round(warm, 3),
        "rtf_cold": round(cold / secs, 3), "rtf_warm": round(warm / secs, 3),
        "stages_cold_s": {k: round(v, 3) for k, v in cold_stages.items()},
        "stages_warm_s": {k: round(statistics.median(v), 3) for k, v in stages.items()},
    }  # fmt: skip


def webui_importable(webui: Path) -> None:
    """Make a WebUI checkout's `infer` package importable (not our infer.py), with stubs for
    the modules its pipeline imports but these benches never call."""
    sys.path.insert(0, str(webui))
    package = types.ModuleType("infer")
    package.__path__ = [str(webui / "infer")]
    sys.modules["infer"] = package
    for name in ("fairseq", "parselmouth", "pyworld", "torchcrepe"):
        sys.modules.setdefault(name, type(sys)("stub_" + name))


def bench_webui(webui: Path, conv, work: Path, audio: np.ndarray, runs: int) -> dict:
    """The WebUI's pipeline on the same networks (see the module docstring)."""
    webui_importable(webui)
    from infer.lib.infer_pack.models import SynthesizerTrnMs768NSFsid
    from infer.modules.vc.pipeline import Pipeline

    from rvc.io.voice_model import read_voice_model
    from rvc.io.weight_norm_names import to_rvc_names

    vm = read_voice_model(work / "v.pth")
    net = SynthesizerTrnMs768NSFsid(*vm.config, is_half=False)
    del net.enc_q
    net.load_state_dict({k: v.float() for k, v in to_rvc_names(vm.weights).items()}, strict=False)
    net.eval()
    hubert = conv.embedder.model  # the same transformers HubertModel

    class Hubert:  # their fairseq call, answered by transformers
        def extract_features(self, source, padding_mask=None, output_layer=12):
            return (hubert(source).last_hidden_state,)

    cfg = type("Config", (), {"x_pad": 1, "x_query": 6, "x_center": 38, "x_max": 41,
                              "is_half": False, "device": "cpu"})()  # fmt: skip
    pipe = Pipeline(40000, cfg)

    def once() -> float:
        dt, _ = _timed(pipe.pipeline, Hubert(), net, 0, audio.astype(np.float64), "bench", [0, 0, 0], 0,
                       "rmvpe", "", 0.0, 1, 3, 40000, 0, 1.0, "v2", 0.33)  # fmt: skip
        return dt

    from infer.lib.rmvpe import RMVPE

    pipe.model_rmvpe = RMVPE(str(work / "rmvpe.pt"), is_half=False, device="cpu")
    cold = once()
    warm = statistics.median(once() for _ in range(runs))
    secs = len(audio) / 16000
    return {"cold_s": round(cold, 3), "warm_s": round(warm, 3),
            "rtf_cold": round(cold / secs, 3), "rtf_warm": round(warm / secs, 3)}  # fmt: skip


def bench_onnx(work: Path, seconds: float, runs: int) -> dict:
    """The synthesizer alone: torch `infer` vs onnxruntime on the exported graph (CPU, fp32)."""
    import onnxruntime as ort

    from rvc.io.onnx_export import example_inputs, export_onnx
    from rvc.io.voice_model import load_voice_model

    vm = load_voice_model(work / "v.pth")
    net = vm.synthesizer.for_inference(None, "cpu")
    export_s, info = _timed(export_onnx, vm, work / "v.onnx")
    frames = int(seconds * 100)  # 10 ms content frames
    inputs = example_inputs(net, "webui", frames)
    named = dict(zip(info["inputs"], inputs, strict=True))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()
    sess = ort.InferenceSession(str(work / "v.onnx"), opts, providers=["CPUExecutionProvider"])
    feed = {k: v.numpy() for k, v in named.items()}
    args = (named["phone"], named["phone_lengths"], named["pitch"], named["pitchf"], named["ds"])

    def median(fn) -> tuple[float, float]:
        cold = _timed(fn)[0]
        return cold, statistics.median(_timed(fn)[0] for _ in range(runs))

    torch_cold, torch_warm = median(lambda: net.infer(*args))
    # what the converter runs on long chunks: the vocoder in cache-sized pieces
    pieces_cold, pieces_warm = median(lambda: net.infer(*args, vocode_frames=frames))
    ort_cold, ort_warm = median(lambda: sess.run(None, feed))
    return {"frames": frames, "export_s": round(export_s, 3),
            "torch_cold_s": round(torch_cold, 3), "torch_warm_s": round(torch_warm, 3),
            "torch_pieces_cold_s": round(pieces_cold, 3), "torch_pieces_warm_s": round(pieces_warm, 3),
            "onnxruntime_cold_s": round(ort_cold, 3), "onnxruntime_warm_s": round(ort_warm, 3),
            "onnxruntime": ort.__version__}  # fmt: skip


def device_options(p: argparse.ArgumentParser) -> None:
    """--device, --threads and --precision, as bench/convert.py and bench/extract.py take them."""
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument(
        "--precision",
        default="fp32",
        choices=["fp32", "bf16", "fp16", "auto"],
        help="device.inference_precision for ours (the reference stays fp32)",
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    device_options(p)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--webui", type=Path, default=None, help="an RVC WebUI checkout to compare with")
    p.add_argument("--skip-ours", action="store_true", help="with --webui: time only theirs")
    p.add_argument("--onnx", action="store_true", help="also: synthesizer, onnxruntime vs torch")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    from rvc.demo.voice import synthesize_utterance

    audio, _ = synthesize_utterance(np.random.default_rng(0), 16000, duration=a.seconds)
    audio = (0.8 * audio / np.abs(audio).max()).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        conv, work = build_ours(a.device, Path(tmp), a.precision)
        result = {"bench": "convert", "seconds": a.seconds, "device": a.device,
                  "threads": torch.get_num_threads(), "precision": a.precision, "cpu": cpu_description(),
                  "torch": torch.__version__, "kernels": kernel_report()}  # fmt: skip
        if not a.skip_ours:
            result["ours"] = bench_ours(conv, audio, a.runs)
        if a.webui:
            result["webui"] = bench_webui(a.webui, conv, work, audio, a.runs)
        if a.onnx:
            result["synthesizer_onnx"] = bench_onnx(work, a.seconds, a.runs)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
