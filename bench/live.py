"""Benchmark live conversion (`rvc.infer.streaming.StreamingConverter`); one JSON line.

The networks of bench/convert.py (real-size, random weights: RMVPE, HuBERT base, the 40k v2
HiFi-GAN NSF synthesizer) stream `--seconds` of a synthetic voice as fast as they convert, for
each block size and precision asked. Per row: the algorithmic latency (block + crossfade +
SOLA search), per-block compute (median, p95, max) after the warm-up, the real-time margin
(median compute / block: below 1 keeps up) and the underruns (blocks slower than real time).

    python bench/live.py --threads 2                                # fp32 and auto, 0.1/0.25/0.5 s
    python bench/live.py --threads 2 --precision auto --blocks 0.25
    python bench/live.py --device cuda --blocks 0.05,0.1
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch
from convert import build_ours  # bench/: scripts share helpers
from kernels import kernel_report

from rvc.utils.device import cpu_description


def stream_row(conv, audio: np.ndarray, block_s: float, extra_s: float) -> dict:
    from rvc.infer import ConvertOptions
    from rvc.infer.streaming import StreamingConverter, StreamOptions

    live = StreamingConverter(
        conv, ConvertOptions(index_rate=0.0), StreamOptions(block_s=block_s, extra_s=extra_s)
    )
    warmup = live.warmup()
    for i in range(0, len(audio), live.block_samples):
        live.push(audio[i : i + live.block_samples])
    s = live.stats.summary()
    return {
        "block_s": block_s,
        "latency_ms": round(live.latency_s * 1e3, 1),
        "warmup_s": round(warmup, 2),
        "compute_median_ms": round(s["compute_median_s"] * 1e3, 1),
        "compute_p95_ms": round(s["compute_p95_s"] * 1e3, 1),
        "compute_max_ms": round(s["compute_max_s"] * 1e3, 1),
        "margin": round(s["margin"], 3),
        "underruns": s["underruns"],
        "blocks": s["blocks"],
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--precision", default="fp32,auto", help="comma-separated: fp32,bf16,fp16,auto")
    p.add_argument("--blocks", default="0.1,0.25,0.5", help="block sizes in seconds")
    p.add_argument("--extra", type=float, default=2.5, help="stream.extra_s (left context)")
    p.add_argument("--seconds", type=float, default=30.0)
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    from rvc.demo.voice import synthesize_utterance

    audio, _ = synthesize_utterance(np.random.default_rng(0), 16000, duration=a.seconds)
    audio = (0.8 * audio / np.abs(audio).max()).astype(np.float32)
    rows = []
    for precision in a.precision.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            conv, _ = build_ours(a.device, Path(tmp), precision)
            for block in (float(b) for b in a.blocks.split(",")):
                rows.append({"precision": precision, **stream_row(conv, audio, block, a.extra)})
    print(json.dumps({"bench": "live", "seconds": a.seconds, "device": a.device,
                      "threads": torch.get_num_threads(), "extra_s": a.extra,
                      "cpu": cpu_description(), "torch": torch.__version__,
                      "kernels": kernel_report(), "rows": rows}))  # fmt: skip


if __name__ == "__main__":
    main()
