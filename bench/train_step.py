"""Benchmark the codebase's training step (D step, then G step) and print a one-line JSON result.

The GAN is built from the real config as train.py builds it: `conf/train.yaml` composed with
`model=<32k|40k|48k|debug>`, `vocoder=<option>` and `embedder=spectral` (768-dim v2 features, no
weights), then `rvc.train.step.build_gan` (the model's generator and mel, the vocoder's
discriminator and generator loss). The timed step is `rvc.train.step.gan_step`, the one the
LightningModule runs, with plain-torch hooks: bf16 autocast for `--precision bf16`, grad-norm
clipping for `--clip`. Optimisers from the config's `optim.optimizer` (AdamW lr 1e-4, betas
(0.8, 0.99), eps 1e-9). Data loading is not timed: a random batch in the DataModule's layout is
built once on the device.

    python bench/train_step.py --device cuda --precision bf16 --compile
    python bench/train_step.py --device cpu --model debug --batch 2 --steps 2 --warmup 1   # smoke
    python bench/train_step.py --device cpu --batch 2 --frames 100 --checkpointing   # memory knob
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from rvc import registry
from rvc.f0.coarse import f0_to_coarse
from rvc.registry import package_conf
from rvc.train.step import StepHooks, build_gan, compile_gan, gan_step
from rvc.utils.device import cpu_description

CONF_DIR = package_conf()
MODELS = registry.names("model")  # 32k 40k 48k debug
PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def vocoder_options() -> dict[str, str]:
    """Vocoder name (as `.pth` files and `--vocoder` spell it) -> its `conf/vocoder` option."""
    return {str(cfg.name): option for option, cfg in registry.options("vocoder")}


def compose_train(model: str, vocoder: str) -> DictConfig:
    """The real `train` config for a model option and a vocoder (name or option)."""
    from hydra import compose, initialize_config_dir

    option = vocoder_options().get(vocoder, vocoder)
    overrides = ["name=bench", "out_dir=/tmp/bench", f"model={model}", f"vocoder={option}",
                 "embedder=spectral"]  # fmt: skip
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


def device_info(device: torch.device) -> dict:
    """Device name, torch version and host facts for the JSON record."""
    info = {"torch": torch.__version__, "python": platform.python_version()}
    if device.type == "cuda":
        info["device_name"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    else:
        info["device_name"] = cpu_description()
        info["cpu_threads"] = torch.get_num_threads()
    return info


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work so wall-clock timings cover it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def warm_up(fn: Callable[[], object], n: int, device: torch.device) -> float:
    """Call `fn` n times (compilation happens here); the seconds taken. Resets CUDA peak memory."""
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    synchronize(device)
    seconds = time.perf_counter() - t0
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    return seconds


def peak_cuda_mem_gib(device: torch.device) -> float | None:
    """Peak CUDA memory since the last reset, GiB (None on CPU)."""
    if device.type != "cuda":
        return None
    return round(torch.cuda.max_memory_allocated(device) / 2**30, 3)


def setup_backends(args: argparse.Namespace, device: torch.device) -> None:
    """TF32 / cuDNN switches from the options (no effect on CPU)."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = args.tf32
        torch.backends.cudnn.allow_tf32 = args.tf32
        torch.backends.cudnn.benchmark = args.cudnn_benchmark


def random_batch(
    batch: int, frames: int, hop: int, dim: int, sample_rate: int, device: torch.device
) -> dict[str, torch.Tensor]:
    """A batch as the DataModule gives it: padded to `frames`, zero past each item's length."""
    g = torch.Generator().manual_seed(0)
    # lengths from 70 % to 100 % of the padded length; the longest fills it, as a collate does
    lengths = torch.randint(int(0.7 * frames), frames + 1, (batch,), generator=g)
    lengths[0] = frames
    valid = torch.arange(frames)[None] < lengths[:, None]  # [B, T]
    t = torch.arange(frames * hop) / sample_rate
    f0_track = 120 + 80 * torch.rand(batch, 1, generator=g)  # [B, 1] Hz per item
    wave = 0.3 * torch.sin(2 * math.pi * f0_track * t) + 0.02 * torch.randn(
        batch, frames * hop, generator=g
    )  # [B, T·hop]
    pitchf = f0_track.expand(batch, frames).clone()  # [B, T]
    pitchf[:, : frames // 8] = 0  # an unvoiced stretch
    pitchf = torch.where(valid, pitchf, 0.0)
    out = {
        "phone": torch.randn(batch, frames, dim, generator=g) * valid[..., None],  # [B, T, dim]
        "phone_lengths": lengths,  # [B] long
        "pitch": torch.where(valid, f0_to_coarse(pitchf), 0),  # [B, T] long
        "pitchf": pitchf,  # [B, T] Hz
        "wave": (wave * valid.repeat_interleave(hop, dim=1)).unsqueeze(1),  # [B, 1, T·hop]
        "wave_lengths": lengths * hop,  # [B]
        "sid": torch.randint(0, 4, (batch,), generator=g),  # [B] long
    }
    return {k: v.to(device) for k, v in out.items()}


def build(args: argparse.Namespace, device: torch.device):
    """The config's GAN (compiled in place with --compile), its optimisers, hooks and a batch."""
    cfg = compose_train(args.model, args.vocoder)
    torch.manual_seed(args.seed)
    gan = build_gan(cfg).to(device).train()
    gan.generator.set_checkpointing(args.checkpointing)
    if args.channels_last:  # only the 2-D period / resolution convs of D have a 4-D layout
        gan.discriminator.to(memory_format=torch.channels_last)
    if args.compile:  # in place, as `device.compile` does: parameters and state-dict names stay
        compile_gan(
            gan, backend=args.compile_backend, mode=args.compile_mode, dynamic=args.dynamic or None
        )
    optimizer = instantiate(cfg.optim.optimizer)  # a partial: AdamW(params, ...)
    extra = {"fused": True} if args.fused_adam else {}
    opt_g = optimizer(gan.generator.parameters(), **extra)
    opt_d = optimizer(gan.discriminator.parameters(), **extra)

    dtype = PRECISIONS[args.precision]
    clip = None
    if args.clip is not None:

        def clip(opt: torch.optim.Optimizer) -> None:
            params = [p for group in opt.param_groups for p in group["params"]]
            torch.nn.utils.clip_grad_norm_(params, args.clip)

    hooks = StepHooks(
        clip=clip,
        autocast=(
            (lambda: torch.autocast(device.type, dtype=dtype))
            if args.precision != "fp32"
            else nullcontext
        ),
    )
    g = gan.generator
    frames = args.frames or (64 if args.model == "debug" else 400)
    batch = random_batch(args.batch, frames, g.hop_length, cfg.embedder.dim, g.sample_rate, device)
    return gan, opt_g, opt_d, hooks, batch


def run(args: argparse.Namespace) -> dict:
    """Build, warm up (compilation happens here), time `steps` steps one by one; the record."""
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    setup_backends(args, device)
    gan, opt_g, opt_d, hooks, batch = build(args, device)

    def step() -> dict[str, torch.Tensor]:
        return gan_step(gan, batch, opt_g, opt_d, hooks)

    warmup_s = warm_up(step, args.warmup, device)
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        losses = step()
        synchronize(device)  # each step timed alone: the median ignores outliers
        times.append(time.perf_counter() - t0)
    median, mean = statistics.median(times), statistics.fmean(times)

    g, d = gan.generator, gan.discriminator
    record = {
        "bench": "train_step",
        "ms_per_step_median": round(1000 * median, 2),
        "ms_per_step_mean": round(1000 * mean, 2),
        "steps_per_s": round(1 / median, 4),
        "samples_per_s": round(args.batch / median, 2),
        "warmup_s": round(warmup_s, 2),
        "peak_cuda_mem_gib": peak_cuda_mem_gib(device),
        # CPU: the process's peak resident memory (ru_maxrss, KiB); one configuration per process
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
        "last_loss_g": round(float(losses["g/loss"]), 4),
        "last_loss_d": round(float(losses["d/loss"]), 4),
        "params_g_m": round(sum(p.numel() for p in g.parameters()) / 1e6, 2),
        "params_d_m": round(sum(p.numel() for p in d.parameters()) / 1e6, 2),
        "model": args.model,
        "vocoder": g.vocoder,
        "sample_rate": g.sample_rate,
        "frames": int(batch["phone"].shape[1]),
        "segment_samples": g.segment_size * g.hop_length,
        **device_info(device),
        "options": vars(args),
    }
    if not (math.isfinite(record["last_loss_g"]) and math.isfinite(record["last_loss_d"])):
        raise RuntimeError(f"non-finite losses: {record['last_loss_g']}, {record['last_loss_d']}")
    return record


def _model_for_sr(value: str) -> str:
    model = f"{int(value) // 1000}k"
    if model not in MODELS:
        raise argparse.ArgumentTypeError(f"no conf/model option for sample rate {value}")
    return model


def add_common_options(p: argparse.ArgumentParser, warmup: int) -> None:
    """The options both benchmarks share: model, device, compile settings, repeatability."""
    p.add_argument("--model", default="40k", choices=MODELS, help="conf/model option")
    p.add_argument("--sr", dest="model", type=_model_for_sr, default=argparse.SUPPRESS,
                   help="alias: --sr 40000 is --model 40k")  # fmt: skip
    p.add_argument("--tiny", dest="model", action="store_const", const="debug",
                   default=argparse.SUPPRESS, help="alias for --model debug (CPU smoke check)")  # fmt: skip
    names = vocoder_options()
    p.add_argument("--vocoder", default="HiFi-GAN", choices=[*names, *names.values()],
                   help="vocoder name or conf/vocoder option")  # fmt: skip
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--compile-backend", default="inductor")
    p.add_argument(
        "--compile-mode",
        default="default",
        choices=["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"],
    )
    p.add_argument("--cudnn-benchmark", action="store_true")
    p.add_argument("--warmup", type=int, default=warmup)
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch default)")
    p.add_argument("--seed", type=int, default=1234)


def parser() -> argparse.ArgumentParser:
    """Command-line options (see bench/README.md)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_options(p, warmup=5)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--frames", type=int, default=0, help="padded phone frames (0: 400, debug 64)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    p.add_argument("--compile", action="store_true", help="torch.compile G and D (in place)")
    p.add_argument(
        "--checkpointing", action="store_true", help="model.checkpointing: G recomputed in backward"
    )
    p.add_argument("--dynamic", action="store_true", help="compile with dynamic shapes")
    p.add_argument("--tf32", action="store_true", help="TF32 matmuls/convs (Ampere+)")
    p.add_argument("--channels-last", action="store_true", help="channels_last for D's 2-D convs")
    p.add_argument("--fused-adam", action="store_true", help="AdamW(fused=True)")
    p.add_argument("--clip", type=float, default=None, help="grad-norm clip (default: none)")
    p.add_argument("--steps", type=int, default=20, help="timed steps (median and mean)")
    p.add_argument("--compare", action="store_true", help="the plain and the fast step, same run")
    p.add_argument(
        "--append-docs", action="store_true", help="with --compare: add a row to docs/benchmarks.md"
    )
    return p


def compare(args: argparse.Namespace) -> dict:
    """The plain step (RVC's style: unfused AdamW, fp32, eager, weight norm per call) and the
    fast step (`device.fast_step`: fused AdamW; plus bf16, TF32, compile and channels-last on a
    GPU; plus bf16 on a CPU with AMX or AVX-512-bf16, where it pays) in one run, same batch and
    sizes; one JSON line with both and the speed-up."""
    import copy

    from rvc.utils.device import fast_bf16

    plain = copy.copy(args)
    plain.fused_adam = plain.compile = plain.tf32 = plain.channels_last = False
    plain.precision = "fp32"
    fast = copy.copy(args)
    fast.fused_adam = True
    if torch.device(args.device).type == "cuda":
        fast.precision, fast.tf32, fast.compile, fast.channels_last = "bf16", True, True, True
    elif fast_bf16(args.device):  # elsewhere CPU bf16 is emulated: 17x slower on AVX2
        fast.precision = "bf16"
    a, b = run(plain), run(fast)
    return {"bench": "train_step_compare", "plain": a, "fast": b,
            "speedup": round(a["ms_per_step_median"] / b["ms_per_step_median"], 3)}  # fmt: skip


def markdown_row(result: dict, argv: list[str]) -> str:
    """A docs/benchmarks.md table row: date, device, command, plain and fast ms/step."""
    import datetime

    a, b = result["plain"], result["fast"]
    device = a.get("device_name") or a.get("cpu") or a["options"]["device"]
    o = b["options"]
    levers = ["fused AdamW"] + [name for name, on in (
        (o["precision"], o["precision"] != "fp32"), ("TF32", o["tf32"]),
        ("compile", o["compile"]), ("channels-last", o["channels_last"])) if on]  # fmt: skip
    return (f"| {datetime.date.today()} | {device} | `train_step.py {' '.join(argv)}` | "
            f"plain {a['ms_per_step_median']} ms, fast {b['ms_per_step_median']} ms: "
            f"{result['speedup']}× (batch {a['options']['batch']}, {a['vocoder']}; "
            f"fast = {', '.join(levers)}) |")  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    """Parse options, run, print one JSON line (with --compare, plain vs fast)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    if args.steps < 1 or args.warmup < 0 or args.batch < 1:
        raise SystemExit("--steps and --batch must be >= 1, --warmup >= 0")
    record = compare(args) if args.compare else run(args)
    print(json.dumps(record, default=str))
    if args.compare and args.append_docs:
        row = markdown_row(record, argv)
        with open(
            Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md", "a", encoding="utf-8"
        ) as f:
            f.write(row + "\n")
        print(row)
    return record


if __name__ == "__main__":
    main()
