"""Benchmark voice-conversion inference speed (real-time factor) and print a one-line JSON result.

Runs `Synthesizer.infer` (enc_p -> flow reverse -> vocoder; no enc_q, as RVC drops it) of the
v2 generator the real config builds (`--model 40k` by default; `train_step.compose_train`) with
random weights on a 30 s clip (sample_rate / hop = 100 feature frames per second, after RVC's
×2 repeat of the 20 ms content features). Feature extraction (HuBERT, F0) is not included.
RTF = compute seconds / audio seconds; below 1 is faster than real time.

    python bench/infer.py --device cuda --precision fp16 --fold-weight-norm --compile
    python bench/infer.py --device cpu --model debug --seconds 5 --runs 2   # smoke
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from hydra.utils import instantiate
from train_step import (
    PRECISIONS,
    add_common_options,
    compose_train,
    device_info,
    peak_cuda_mem_gib,
    synchronize,
    warm_up,
)

from rvc.f0.coarse import f0_to_coarse
from rvc.models.commons import has_weight_norm
from rvc.models.synthesizer import Synthesizer


def build(args: argparse.Namespace, device: torch.device) -> tuple[Synthesizer, tuple]:
    """The model in inference form and one clip's inputs (batch 1)."""
    cfg = compose_train(args.model, args.vocoder)
    torch.manual_seed(args.seed)
    model = instantiate(cfg.model.synthesizer, **cfg.vocoder.kwargs)  # as build_gan's generator
    del model.enc_q  # training-only posterior encoder, removed by RVC for inference
    if args.fold_weight_norm:
        model.remove_weight_norm()
    dtype = PRECISIONS[args.precision]
    model = model.to(device=device, dtype=dtype).eval()
    dim = model.text_enc_hidden_dim  # the embedder's width (spectral: 768)

    fps = model.sample_rate / model.hop_length  # 100 for every conf/model option
    frames = round(args.seconds * fps)
    g = torch.Generator().manual_seed(0)
    t = torch.arange(frames) / fps
    pitchf = 160 + 40 * torch.sin(2 * torch.pi * 0.5 * t)  # a gently moving voice, Hz
    pitchf[torch.rand(frames, generator=g) < 0.15] = 0  # unvoiced frames
    inputs = (
        torch.randn(1, frames, dim, generator=g).to(device, dtype),  # phone [1, T, dim]
        torch.tensor([frames], device=device),  # lengths [1]
        f0_to_coarse(pitchf).unsqueeze(0).to(device),  # pitch [1, T]
        pitchf.unsqueeze(0).to(device),  # pitchf [1, T] Hz (the source runs in fp32)
        torch.zeros(1, dtype=torch.long, device=device),  # sid [1]
    )
    return model, inputs


def run(args: argparse.Namespace) -> dict:
    """Build, warm up (compilation happens here), time `runs` conversions; return the record."""
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = args.cudnn_benchmark
    model, inputs = build(args, device)
    infer = Synthesizer.infer.__wrapped__  # the function under infer's no_grad decorator
    if args.compile:
        kwargs = {"backend": args.compile_backend}
        if args.compile_mode != "default":
            kwargs["mode"] = args.compile_mode
        infer = torch.compile(infer, **kwargs)

    def convert() -> torch.Tensor:
        with torch.inference_mode() if not args.compile else torch.no_grad():
            return infer(model, *inputs)[0]

    warmup_s = warm_up(convert, args.warmup, device)
    times = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        wav = convert()
        synchronize(device)
        times.append(time.perf_counter() - t0)
    audio_s = wav.shape[-1] / model.sample_rate
    if not torch.isfinite(wav).all():
        raise RuntimeError("non-finite audio from the benchmark model")
    median = statistics.median(times)
    return {
        "bench": "infer",
        "rtf": round(median / audio_s, 5),
        "x_realtime": round(audio_s / median, 2),
        "median_s": round(median, 4),
        "min_s": round(min(times), 4),
        "audio_s": round(audio_s, 3),
        "model": args.model,
        "vocoder": model.vocoder,
        "sample_rate": model.sample_rate,
        "warmup_s": round(warmup_s, 2),
        "peak_cuda_mem_gib": peak_cuda_mem_gib(device),
        "weight_norm_folded": not has_weight_norm(model),
        **device_info(device),
        "options": vars(args),
    }


def parser() -> argparse.ArgumentParser:
    """Command-line options (see bench/README.md)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_options(p, warmup=2)
    p.add_argument("--seconds", type=float, default=30.0, help="clip length")
    p.add_argument("--precision", default="fp32", choices=sorted(PRECISIONS))
    p.add_argument("--compile", action="store_true", help="torch.compile the infer function")
    p.add_argument("--fold-weight-norm", action="store_true", help="remove_weight_norm() first")
    p.add_argument("--runs", type=int, default=5)
    return p


def main(argv: list[str] | None = None) -> dict:
    """Parse options, run, print one JSON line."""
    args = parser().parse_args(argv)
    if args.runs < 1 or args.warmup < 0 or args.seconds <= 0:
        raise SystemExit("--runs must be >= 1, --warmup >= 0, --seconds > 0")
    record = run(args)
    print(json.dumps(record))
    return record


if __name__ == "__main__":
    main()
