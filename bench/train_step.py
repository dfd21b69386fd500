"""Benchmark one RVC GAN training step (D step, then G step) and print a one-line JSON result.

Full-size v2 generator from conf/model/<sr>.yaml plus the matching MultiPeriodDiscriminator
(v3 for RefineGAN, else v2) on a random batch, stepped exactly as RVC trains:
D on the detached fake -> backward -> step; G with mel + KL + feature-matching + adversarial
losses -> backward -> step; AdamW lr 1e-4, betas (0.8, 0.99), eps 1e-9. Data loading is not
timed: the batch is built once on the device.

    python bench/train_step.py --device cuda --precision bf16 --compile
    python bench/train_step.py --device cpu --tiny --batch 2 --steps 2 --warmup 1   # smoke
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch
from omegaconf import OmegaConf

from rvc.audio.mel import MelSpectrogram
from rvc.f0.coarse import f0_to_coarse
from rvc.losses.gan import DiscriminatorLoss, GeneratorLoss
from rvc.losses.multiscale_mel import MultiScaleMelLoss
from rvc.models.commons import slice_segments
from rvc.models.discriminators import MultiPeriodDiscriminator
from rvc.models.synthesizer import Synthesizer
from rvc.models.vocoders import VOCODER_NAMES

CONF_MODEL = Path(__file__).resolve().parents[1] / "conf" / "model"
SAMPLE_RATES = {32000: "32k", 40000: "40k", 48000: "48k"}
# a smoke-check model: 1 attention layer, 16 channels, three upsampling stages to hop 160 at
# 16 kHz (10 ms frames, like the real ones); the discriminator stays full size
TINY = {
    "sample_rate": 16000,
    "mel": {"n_fft": 512, "hop_length": 160, "win_length": 512, "n_mels": 40},
    "config": [257, 32, 8, 16, 32, 2, 1, 3, 0.0, "1", [3, 5], [[1, 2], [1, 2]],
               [10, 4, 4], 32, [20, 8, 8], 4, 8, 16000],
}  # fmt: skip
PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def model_spec(sr: int, vocoder: str, tiny: bool) -> tuple[list, dict, int]:
    """(18-item generator config, MelSpectrogram kwargs, sample rate) for a size."""
    if tiny:
        config = list(TINY["config"])
        if vocoder == "RefineGAN":  # its source path needs initial channels divisible by 2**4
            config[13] = 64
        return config, dict(TINY["mel"], sample_rate=TINY["sample_rate"]), TINY["sample_rate"]
    if sr not in SAMPLE_RATES:
        raise ValueError(f"--sr must be one of {sorted(SAMPLE_RATES)}, got {sr}")
    cfg = OmegaConf.load(CONF_MODEL / f"{SAMPLE_RATES[sr]}.yaml")
    s = OmegaConf.to_container(cfg.synthesizer, resolve=True)
    config = [s["spec_channels"], s["segment_size"], s["inter_channels"], s["hidden_channels"],
              s["filter_channels"], s["n_heads"], s["n_layers"], s["kernel_size"], s["p_dropout"],
              s["resblock"], s["resblock_kernel_sizes"], s["resblock_dilation_sizes"],
              s["upsample_rates"], s["upsample_initial_channel"], s["upsample_kernel_sizes"],
              s["spk_embed_dim"], s["gin_channels"], s["sr"]]  # fmt: skip
    mel = OmegaConf.to_container(cfg.mel, resolve=True)
    mel.pop("_target_")
    return config, mel, int(cfg.sample_rate)


def device_info(device: torch.device) -> dict:
    """Device name, torch version and host facts for the JSON record."""
    info = {"torch": torch.__version__, "python": platform.python_version()}
    if device.type == "cuda":
        info["device_name"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    else:
        info["device_name"] = _cpu_name()
        info["cpu_threads"] = torch.get_num_threads()
    return info


def _cpu_name() -> str:
    try:  # Linux; elsewhere fall back to what platform knows
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


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
    batch: int, frames: int, hop: int, dim: int, mel: MelSpectrogram, device: torch.device
) -> dict[str, torch.Tensor]:
    """A collate-like batch: padded lengths, voiced/unvoiced F0, audio and its spectrogram."""
    g = torch.Generator().manual_seed(0)
    # lengths from 70 % to 100 % of the padded length; the longest fills it, as a collate does
    lengths = torch.randint(int(0.7 * frames), frames + 1, (batch,), generator=g)
    lengths[0] = frames
    t = torch.arange(frames * hop) / mel.sample_rate
    f0_track = 120 + 80 * torch.rand(batch, 1, generator=g)  # [B, 1] Hz per item
    wave = 0.3 * torch.sin(2 * math.pi * f0_track * t) + 0.02 * torch.randn(
        batch, frames * hop, generator=g
    )  # [B, N]
    pitchf = f0_track.expand(batch, frames).clone()  # [B, T]
    pitchf[:, : frames // 8] = 0  # an unvoiced stretch
    spec = mel.spectrogram(wave)  # [B, F, T]: RVC's padding gives exactly `frames` frames
    out = {
        "phone": torch.randn(batch, frames, dim, generator=g),
        "lengths": lengths,
        "pitch": f0_to_coarse(pitchf),
        "pitchf": pitchf,
        "spec": spec,
        "wave": wave.unsqueeze(1),  # [B, 1, N]
        "sid": torch.randint(0, 4, (batch,), generator=g),
    }
    return {k: v.to(device) for k, v in out.items()}


def build(args: argparse.Namespace, device: torch.device):
    """Generator, discriminator, losses, optimizers and the batch for the options."""
    config, mel_kwargs, sr = model_spec(args.sr, args.vocoder, args.tiny)
    torch.manual_seed(args.seed)
    net_g = Synthesizer(*config, use_f0=True, text_enc_hidden_dim=768, vocoder=args.vocoder)
    net_d = MultiPeriodDiscriminator("v3" if args.vocoder == "RefineGAN" else "v2")
    net_g, net_d = net_g.to(device).train(), net_d.to(device).train()
    if args.channels_last:  # only the 2-D period / resolution convs of D have a 4-D layout
        net_d = net_d.to(memory_format=torch.channels_last)
    mel = MelSpectrogram(**mel_kwargs)
    if args.vocoder == "RefineGAN":  # Applio: multi-scale mel on waveforms, weight c_mel / 3
        g_loss = GeneratorLoss(mel=45.0 / 3, mel_fn=MultiScaleMelLoss(sr).to(device))
    else:
        g_loss = GeneratorLoss(mel=45.0)
    adamw = {"lr": 1e-4, "betas": (0.8, 0.99), "eps": 1e-9}
    if args.fused_adam:
        adamw["fused"] = True
    opt_g = torch.optim.AdamW(net_g.parameters(), **adamw)
    opt_d = torch.optim.AdamW(net_d.parameters(), **adamw)
    frames = args.frames or (64 if args.tiny else 400)
    batch = random_batch(args.batch, frames, net_g.hop_length, 768, mel, device)
    return net_g, net_d, mel, DiscriminatorLoss(), g_loss, opt_g, opt_d, batch


def make_step(args, net_g, net_d, mel, d_loss, g_loss, opt_g, opt_d, batch, device):
    """A closure running one full GAN step; returns the detached G and D totals."""
    g_fwd = torch.compile(net_g, **compile_kwargs(args)) if args.compile else net_g
    d_fwd = torch.compile(net_d, **compile_kwargs(args)) if args.compile else net_d
    dtype = PRECISIONS[args.precision]
    autocast = torch.autocast(device.type, dtype=dtype, enabled=args.precision != "fp32")
    seg, hop = net_g.segment_size, net_g.hop_length
    multiscale = args.vocoder == "RefineGAN"
    g_params, d_params = list(net_g.parameters()), list(net_d.parameters())
    b = batch
    clip = float("inf") if args.clip is None else args.clip

    def step() -> tuple[torch.Tensor, torch.Tensor]:
        with autocast:
            y_hat, ids, _, z_mask, (_, z_p, m_p, logs_p, _, logs_q) = g_fwd(
                b["phone"], b["lengths"], b["pitch"], b["pitchf"], b["spec"], b["lengths"],
                b["sid"],
            )  # fmt: skip
            wave = slice_segments(b["wave"], ids * hop, seg * hop)  # [B, 1, seg·hop]
            losses_d = d_loss(d_fwd, wave, y_hat)
        opt_d.zero_grad(set_to_none=True)
        losses_d["d/loss"].backward()
        # RVC only measures the norm (clip value None); max_norm=inf keeps that cost
        torch.nn.utils.clip_grad_norm_(d_params, clip)
        opt_d.step()

        if multiscale:  # MultiScaleMelLoss runs its STFTs in fp32 itself
            mel_real, mel_fake = wave, y_hat
        else:
            # fp32 mels as RVC (autocast off); the real one from the stored spectrogram
            with torch.autocast(device.type, enabled=False):
                mel_real = slice_segments(mel.spec_to_mel(b["spec"]), ids, seg)
                mel_fake = mel(y_hat.float())
        with autocast:
            kl = (z_p, logs_q, m_p, logs_p, z_mask)
            losses_g = g_loss(d_fwd, wave, y_hat, mel_real, mel_fake, kl_stats=kl)
        opt_g.zero_grad(set_to_none=True)
        losses_g["g/loss"].backward()
        torch.nn.utils.clip_grad_norm_(g_params, clip)
        opt_g.step()
        return losses_g["g/loss"].detach(), losses_d["d/loss"].detach()

    return step


def compile_kwargs(args: argparse.Namespace) -> dict:
    """torch.compile options from the command line."""
    kwargs: dict = {"backend": args.compile_backend, "dynamic": args.dynamic or None}
    if args.compile_mode != "default":
        kwargs["mode"] = args.compile_mode
    return kwargs


def run(args: argparse.Namespace) -> dict:
    """Build, warm up (compilation happens here), time `steps` steps; return the record."""
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    setup_backends(args, device)
    parts = build(args, device)
    net_g, net_d, batch = parts[0], parts[1], parts[-1]
    step = make_step(args, *parts, device)

    warmup_s = warm_up(step, args.warmup, device)
    t0 = time.perf_counter()
    for _ in range(args.steps):
        loss_g, loss_d = step()
    synchronize(device)
    elapsed = time.perf_counter() - t0

    record = {
        "bench": "train_step",
        "steps_per_s": round(args.steps / elapsed, 4),
        "ms_per_step": round(1000 * elapsed / args.steps, 2),
        "samples_per_s": round(args.steps * args.batch / elapsed, 2),
        "warmup_s": round(warmup_s, 2),
        "peak_cuda_mem_gib": peak_cuda_mem_gib(device),
        "last_loss_g": round(float(loss_g), 4),
        "last_loss_d": round(float(loss_d), 4),
        "params_g_m": round(sum(p.numel() for p in net_g.parameters()) / 1e6, 2),
        "params_d_m": round(sum(p.numel() for p in net_d.parameters()) / 1e6, 2),
        "sample_rate": net_g.sample_rate,
        "frames": int(batch["phone"].shape[1]),
        "segment_samples": net_g.segment_size * net_g.hop_length,
        **device_info(device),
        "options": vars(args),
    }
    if not (math.isfinite(record["last_loss_g"]) and math.isfinite(record["last_loss_d"])):
        raise RuntimeError(f"non-finite losses: {record['last_loss_g']}, {record['last_loss_d']}")
    return record


def add_common_options(p: argparse.ArgumentParser, warmup: int) -> None:
    """The options both benchmarks share: size, device, compile settings, repeatability."""
    p.add_argument("--sr", type=int, default=40000, choices=sorted(SAMPLE_RATES))
    p.add_argument("--vocoder", default="HiFi-GAN", choices=VOCODER_NAMES)
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
    p.add_argument("--tiny", action="store_true", help="tiny generator for a CPU smoke check")


def parser() -> argparse.ArgumentParser:
    """Command-line options (see bench/README.md)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_options(p, warmup=5)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--frames", type=int, default=0, help="padded phone frames (0: 400, tiny 64)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    p.add_argument("--compile", action="store_true", help="torch.compile G and D")
    p.add_argument("--dynamic", action="store_true", help="compile with dynamic shapes")
    p.add_argument("--tf32", action="store_true", help="TF32 matmuls/convs (Ampere+)")
    p.add_argument("--channels-last", action="store_true", help="channels_last for D's 2-D convs")
    p.add_argument("--fused-adam", action="store_true", help="AdamW(fused=True) (CUDA)")
    p.add_argument("--clip", type=float, default=None, help="grad-norm clip (default: none)")
    p.add_argument("--steps", type=int, default=20)
    return p


def main(argv: list[str] | None = None) -> dict:
    """Parse options, run, print one JSON line."""
    args = parser().parse_args(argv)
    if args.steps < 1 or args.warmup < 0 or args.batch < 1:
        raise SystemExit("--steps and --batch must be >= 1, --warmup >= 0")
    record = run(args)
    print(json.dumps(record, default=str))
    return record


if __name__ == "__main__":
    main()
