"""Benchmark dataset extraction (`rvc.extract.run.run`) against RVC's per-clip loop; one JSON line.

Real-size networks with random weights, so it runs offline: an RMVPE-sized F0 net
(`rvc.f0.rmvpe_net.RMVPENet`) and a HuBERT-base-sized embedder (transformers' default
`HubertConfig`, loaded by `HubertEmbedder` as `embedder=custom`), on `--minutes` of the
synthetic demo voice in ~20 s files (`rvc.demo.voice.make_demo_dataset`).

- **ours**: `extract.py`'s whole run in this process (slice → F0 → features → audit) with the
  composed `conf/extract.yaml`; seconds per stage (model loading included in its stage), end to
  end, and × real time (seconds of input audio / seconds of work).
- **reference**: RVC's loop over the same slices: each 16 kHz slice read, then F0 on it alone
  and the content features on it alone (batch 1, fp32, eager), as the WebUI's
  `extract_f0_print.py` / `extract_feature_print.py` do. With `--webui PATH` (a checkout outside
  this repository) the F0 is the WebUI's own `RMVPE.infer_from_audio` on the same weights; the
  features are the same transformers HuBERT either way (the WebUI's fairseq is not installed).
  Slicing is not timed for the reference: its numbers are the two models only.

    python bench/extract.py --threads 2                          # 1.9 min, 2 CPU threads
    python bench/extract.py --threads 2 --webui /work/ref/webui
    python bench/extract.py --device cuda --minutes 10 --batch 32
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import soundfile as sf
import torch
from convert import _timed, device_options, webui_importable  # bench/: scripts share helpers
from kernels import kernel_report

from rvc.registry import package_conf
from rvc.utils.device import cpu_description

ROOT = Path(__file__).resolve().parents[1]


def make_models(work: Path) -> tuple[Path, Path]:
    """Random RMVPE-sized weights and a HuBERT-base-sized transformers folder (no downloads)."""
    from transformers import HubertConfig, HubertModel

    from rvc.f0.rmvpe_net import RMVPENet

    torch.manual_seed(0)
    HubertModel(HubertConfig()).save_pretrained(work / "hubert", safe_serialization=True)
    torch.save(RMVPENet().state_dict(), work / "rmvpe.pt")
    return work / "rmvpe.pt", work / "hubert"


def compose(work: Path, data: Path, rmvpe: Path, hubert: Path, a: argparse.Namespace):
    from hydra import compose as hcompose
    from hydra import initialize_config_dir

    overrides = [
        "name=bench", f"paths.root={work}", f"inputs=[{data}]", f"device.batch_size={a.batch}",
        f"device.num_workers={a.workers}", f"f0.model_path={rmvpe}", "embedder=custom",
        f"embedder.local_path={hubert}", "embedder.weights=model.safetensors",
        f"f0.batch_size={a.batch}", f"device.inference_precision={a.precision}",
    ]  # fmt: skip
    if a.device != "cpu":
        overrides.append("device=gpu")
    with initialize_config_dir(config_dir=str(package_conf()), version_base="1.3"):
        return hcompose(config_name="extract", overrides=overrides + a.override)


class _Clock:
    """Adds up the seconds spent in a wrapped function, keyed by `key(args)`."""

    def __init__(self, fn, key):
        self.fn, self.key, self.seconds = fn, key, {}

    def __call__(self, *args, **kw):
        dt, out = _timed(self.fn, *args, **kw)
        k = self.key(args)
        self.seconds[k] = self.seconds.get(k, 0.0) + dt
        return out


def bench_ours(cfg) -> tuple[dict, object]:
    from rvc.extract import features
    from rvc.extract import run as pipeline

    slice_clock = _Clock(pipeline._ingest_all, lambda a: "slice")
    stage_clock = _Clock(features.run_stage, lambda a: a[1])  # (store, stage, ...)
    pipeline._ingest_all, features.run_stage = slice_clock, stage_clock
    try:
        t = time.perf_counter()
        result = pipeline.run(cfg)
        total = time.perf_counter() - t
    finally:
        pipeline._ingest_all, features.run_stage = slice_clock.fn, stage_clock.fn
    stages = {**slice_clock.seconds, **stage_clock.seconds}
    stages["other"] = total - sum(stages.values())  # store, mute features, audit
    return {"total_s": total, "stages_s": stages}, result.store


def bench_reference(store, rmvpe: Path, hubert: Path, device: str, webui: Path | None) -> dict:
    """RVC's per-clip loop over the store's slices: F0 then features, one slice at a time."""
    from rvc.embedders.hubert import HubertEmbedder
    from rvc.f0.rmvpe import RMVPEEstimator

    paths = [store.path("sliced16k", r) for r in store.slices.values()]
    if webui is not None:
        webui_importable(webui)
        from infer.lib.rmvpe import RMVPE  # their module, outside this repository

        theirs = RMVPE(str(rmvpe), is_half=False, device=device)
        f0_fn = lambda a: theirs.infer_from_audio(a, thred=0.03)  # noqa: E731
    else:
        ours = RMVPEEstimator(model_path=rmvpe, device=device, batch_size=1)
        ours.load()
        f0_fn = ours.compute
    emb = HubertEmbedder(local_path=hubert, weights="model.safetensors", device=device).load()
    emb = emb.to(device)
    clock = {"read": 0.0, "f0": 0.0, "features": 0.0}
    for p in paths:
        dt_read, (audio, _) = _timed(sf.read, p, dtype="float32")
        dt_f0, _ = _timed(f0_fn, audio)
        with torch.inference_mode():
            dt_features, _ = _timed(emb, torch.from_numpy(audio)[None].to(device))
        clock["read"] += dt_read
        clock["f0"] += dt_f0
        clock["features"] += dt_features
    return {"total_s": sum(clock.values()), "stages_s": clock, "slices": len(paths)}


def _rounded(d: dict, secs: float) -> dict:
    out = {"total_s": round(d["total_s"], 2), "x_realtime": round(secs / d["total_s"], 2)}
    out["stages_s"] = {k: round(v, 2) for k, v in d["stages_s"].items()}
    out["stages_x_realtime"] = {k: round(secs / v, 1) for k, v in d["stages_s"].items() if v > 0}
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    device_options(p)
    p.add_argument("--minutes", type=float, default=1.9)
    p.add_argument("--batch", type=int, default=4, help="device.batch_size and f0.batch_size")
    p.add_argument("--workers", type=int, default=2, help="device.num_workers (slicing)")
    p.add_argument("--webui", type=Path, default=None, help="an RVC WebUI checkout (reference F0)")
    p.add_argument("--skip-reference", action="store_true")
    p.add_argument("override", nargs="*", help="extra Hydra overrides for the extract config")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    from rvc.demo.voice import make_demo_dataset

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        paths = make_demo_dataset(work / "data", minutes=a.minutes, sr=40000, seed=0)
        secs = sum(sf.info(str(x)).duration for x in paths)
        rmvpe, hubert = make_models(work)
        ours, store = bench_ours(compose(work, work / "data", rmvpe, hubert, a))
        result = {
            "bench": "extract", "audio_s": round(secs, 1), "files": len(paths),
            "slices": len(store.slices), "device": a.device, "threads": torch.get_num_threads(),
            "batch": a.batch, "precision": a.precision, "overrides": a.override,
            "cpu": cpu_description(), "torch": torch.__version__, "kernels": kernel_report(),
            "ours": _rounded(ours, secs),
        }  # fmt: skip
        if not a.skip_reference:
            ref = bench_reference(store, rmvpe, hubert, a.device, a.webui)
            result["reference"] = {**_rounded(ref, secs), "f0": "webui" if a.webui else "ours"}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
