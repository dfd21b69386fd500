"""live.py: a stream in (microphone, file, stdin), the voice out (speakers, file, stdout).

`run(cfg)` loads the same converter as infer.py, wraps it in a `StreamingConverter` and moves
blocks between a source and a sink:
- devices through `sounddevice` (PortAudio): `input_device` / `output_device` (and an optional
  `monitor_device`), resampled to and from the device's own rate with soxr's streaming
  resampler;
- a file as a stream, paced at real time (`realtime=true`) or as fast as it converts, written
  to `output` aligned with the input (the pipeline's delay taken off the start);
- `-` for raw float32 mono: stdin at 16 kHz in, stdout at the model's rate out
  (`sox speech.wav -t f32 -r 16000 -c 1 - | python live.py voice=… input=- output=- | …`).

A missing PortAudio or sounddevice, or no such device, is one line naming what to install.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from rvc.errors import RVCError
from rvc.formats import ANALYSIS_RATE
from rvc.infer.streaming import StreamingConverter, StreamOptions

log = logging.getLogger(__name__)
STDIO = "-"


class LiveError(RVCError, RuntimeError):
    """Live conversion cannot start: no audio library, no such device, bad options."""


def sounddevice() -> Any:
    """The sounddevice module, or a LiveError that says what to install."""
    try:
        import sounddevice as sd
    except ImportError as e:
        raise LiveError(
            "live audio devices need the sounddevice package: pip install 'rvc-lightning[live]'"
        ) from e
    except OSError as e:  # sounddevice is there but its PortAudio library is not
        raise LiveError(
            "PortAudio is not installed (sounddevice needs it): apt install libportaudio2 "
            "(Debian/Ubuntu), brew install portaudio (macOS); a file works without it: "
            "input=speech.wav output=out.wav"
        ) from e
    return sd


def list_devices() -> str:
    """The audio devices PortAudio sees, one per line (what `input_device=` takes)."""
    sd = sounddevice()
    lines = []
    for i, d in enumerate(sd.query_devices()):
        io = f"{d['max_input_channels']} in, {d['max_output_channels']} out"
        lines.append(f"{i:3d}  {d['name']}  ({io}, {d['default_samplerate']:.0f} Hz)")
    return "\n".join(lines) if lines else "no audio devices found"


class Resampler:
    """A streaming resampler (soxr), or nothing when the rates are equal."""

    def __init__(self, rate_in: int, rate_out: int):
        self.stream = None
        if rate_in != rate_out:
            import soxr

            self.stream = soxr.ResampleStream(rate_in, rate_out, 1, dtype="float32")

    def __call__(self, x: np.ndarray, last: bool = False) -> np.ndarray:
        if self.stream is None:
            return x
        return self.stream.resample_chunk(np.ascontiguousarray(x, dtype=np.float32), last=last)


# ---- sources: blocks of 16 kHz audio --------------------------------------------------------
def file_blocks(path: str, block: int, realtime: bool) -> Iterator[np.ndarray]:
    """A media file as 16 kHz blocks, paced at real time if asked."""
    from rvc.infer.run import load_input

    audio = load_input(path)
    start = time.perf_counter()
    for k, i in enumerate(range(0, len(audio), block)):
        if realtime:  # block k is "recorded" once its last sample has been
            time.sleep(max(0.0, start + (k + 1) * block / ANALYSIS_RATE - time.perf_counter()))
        yield audio[i : i + block]


def stdin_blocks(block: int) -> Iterator[np.ndarray]:
    """Raw float32 mono 16 kHz from stdin, block by block, until it closes."""
    while chunk := sys.stdin.buffer.read(block * 4):
        yield np.frombuffer(chunk[: len(chunk) // 4 * 4], dtype=np.float32)


# ---- sinks ----------------------------------------------------------------------------------
@dataclass
class AlignedWriter:
    """Writes the stream's output with the pipeline's delay cut from the start, so a file in
    gives a file out of the same length, sample-aligned (to a temp name, renamed at close)."""

    path: Path
    rate: int
    skip: int

    def __post_init__(self) -> None:
        import soundfile as sf

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".{self.path.name}.part")
        self.file = sf.SoundFile(self.tmp, "w", self.rate, 1, format="WAV", subtype="FLOAT")
        self.written = 0

    def __call__(self, y: np.ndarray) -> None:
        drop = min(self.skip, len(y))
        self.skip -= drop
        self.file.write(y[drop:])
        self.written += len(y) - drop

    def close(self) -> Path:
        self.file.close()
        self.tmp.replace(self.path)
        return self.path


# ---- the run --------------------------------------------------------------------------------
@dataclass
class LiveResult:
    latency_s: float
    stats: dict[str, float]
    output: Path | None = None
    seconds: float = 0.0  # input streamed


def _meter(x: np.ndarray) -> str:
    db = 20 * np.log10(
        max(float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) if len(x) else 0, 1e-6)
    )
    bar = "#" * int(np.clip((db + 60) / 3, 0, 20))
    return f"{db:6.1f} dB {bar:<20}"


def build_stream(cfg: DictConfig) -> StreamingConverter:
    from rvc.infer.load import ConverterLoadError, load_converter
    from rvc.infer.run import options_from
    from rvc.utils.device import torch_device_type
    from rvc.utils.hub import MissingModelFileError

    try:
        opts = options_from(cfg)
        stream = StreamOptions(**OmegaConf.to_container(cfg.stream, resolve=True))
    except (TypeError, ValueError) as e:
        raise LiveError(str(e)) from e
    try:
        conv = load_converter(
            cfg.voice, cfg.index_file, cfg.f0, cfg.get("embedder"),
            torch_device_type(cfg.device.accelerator),
            str(cfg.device.get("inference_precision", "fp32")), cfg.device.get("compile", False),
        )  # fmt: skip
    except (ConverterLoadError, MissingModelFileError, FileNotFoundError) as e:
        raise LiveError(str(e)) from e
    return StreamingConverter(conv, opts, stream)


def source(cfg: DictConfig, live: StreamingConverter) -> Iterator[np.ndarray]:
    """16 kHz blocks from `input`: a file, stdin (`-`) or, with input=null, a device."""
    block = live.block_samples
    if cfg.input is None:
        from rvc.infer.live_devices import device_blocks

        return device_blocks(cfg.input_device, block)
    if str(cfg.input) == STDIO:
        return stdin_blocks(block)
    if not Path(str(cfg.input)).is_file():
        raise LiveError(f"input={cfg.input}: no such file")
    return file_blocks(str(cfg.input), block, bool(cfg.realtime))


def sinks(cfg: DictConfig, live: StreamingConverter) -> list[Any]:
    """Where the converted audio goes: `output` (a file, stdout `-`, or with output=null the
    output device) and the optional `monitor_device`."""
    out: list[Any] = []
    if cfg.output is None:
        from rvc.infer.live_devices import DeviceSink

        out.append(DeviceSink(cfg.output_device, live.sample_rate))
    elif str(cfg.output) == STDIO:
        out.append(lambda y: sys.stdout.buffer.write(y.astype(np.float32).tobytes()))
    else:
        out.append(AlignedWriter(Path(str(cfg.output)), live.sample_rate, live.delay_samples))
    if cfg.get("monitor_device") is not None:
        from rvc.infer.live_devices import DeviceSink

        out.append(DeviceSink(cfg.monitor_device, live.sample_rate))
    return out


def _logs_to_stderr() -> None:
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout:
            handler.setStream(sys.stderr)


def run(cfg: DictConfig) -> LiveResult:
    """live.py: stream `input` (a device by default) through the voice to `output`."""
    if cfg.get("measure_latency"):
        from rvc.infer.live_devices import measure_latency

        return measure_latency(cfg)
    if str(cfg.output) == STDIO:  # stdout carries the audio: every log line goes to stderr
        _logs_to_stderr()
    live = build_stream(cfg)
    log.info("live: %s, latency %.0f ms (block %.0f + crossfade %.0f + search %.0f ms%s)",
             Path(str(cfg.voice)).name, live.latency_s * 1e3, live.stream.block_s * 1e3,
             live.stream.crossfade_s * 1e3, live.stream.sola_search_s * 1e3,
             f" + formant {live.formant_latency_s * 1e3:.0f}" if live.formant_latency_s else "")  # fmt: skip
    log.info("live: kernels built in %.1f s", live.warmup())
    blocks, outs = source(cfg, live), sinks(cfg, live)
    meter = bool(cfg.meter) and sys.stderr.isatty()
    n_in = n_out = 0
    try:
        for x in blocks:
            n_in += len(x)
            y = live.push(x)
            n_out += len(y)
            for sink in outs:
                sink(y)
            if meter and live.stats.compute_s:
                print(f"\rin {_meter(x)}  out {_meter(y)}  compute "
                      f"{live.stats.compute_s[-1] * 1e3:5.0f} ms", end="", file=sys.stderr)  # fmt: skip
        # what is still in the pipeline, up to the input's length (after the cut-off delay)
        want = live.output_length(n_in) + live.delay_samples - n_out
        tail = live.flush()[: max(want, 0)]
        for sink in outs:
            sink(tail)
    except KeyboardInterrupt:
        log.info("live: stopped (Ctrl-C)")
    finally:
        if meter:
            print(file=sys.stderr)
        paths = [s.close() for s in outs if hasattr(s, "close")]
    output = next((p for p in paths if isinstance(p, Path)), None)
    return LiveResult(live.latency_s, live.stats.summary(), output, n_in / ANALYSIS_RATE)


def summary(result: LiveResult) -> str:
    s = result.stats
    if "device_round_trip_s" in s:  # measure_latency=true
        return (f"latency: devices {s['device_round_trip_s'] * 1e3:.0f} ms round trip (measured) + "
                f"converter {result.latency_s * 1e3:.0f} ms (algorithmic) = "
                f"{s['total_latency_s'] * 1e3:.0f} ms end to end")  # fmt: skip
    lines = [
        f"streamed {result.seconds:.1f} s in {s['blocks']} blocks of {s['block_s'] * 1e3:.0f} ms; "
        f"latency {result.latency_s * 1e3:.0f} ms (algorithmic)",
        f"compute per block: median {s['compute_median_s'] * 1e3:.1f} ms, p95 "
        f"{s['compute_p95_s'] * 1e3:.1f} ms, max {s['compute_max_s'] * 1e3:.1f} ms "
        f"(real-time margin {s['margin']:.2f}); underruns {s['underruns']}",
    ]
    if result.output is not None:
        lines.append(f"output: {result.output}")
    return "\n".join(lines)
