"""Sound devices for live.py, through sounddevice (PortAudio): a microphone as a source of
16 kHz blocks, a speaker as a sink at the model's rate, and a loopback latency measurement.

Devices run at their own rate; soxr's streaming resampler sits between them and the converter
(16 kHz in, the model's rate out). PortAudio errors become one-line `LiveError`s.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
from omegaconf import DictConfig

from rvc.formats import ANALYSIS_RATE
from rvc.infer.live import LiveError, LiveResult, Resampler, sounddevice

CLICK_S = 0.005  # the measurement's click: 5 ms of a 1 kHz tone burst


def _device(sd: Any, device: Any, kind: str) -> dict:
    try:
        return sd.query_devices(device, kind)
    except (ValueError, sd.PortAudioError) as e:
        raise LiveError(
            f"{kind}_device={device}: {e} (python live.py --list-devices lists them)"
        ) from e


@contextlib.contextmanager
def _portaudio_errors() -> Iterator[None]:
    sd = sounddevice()
    try:
        yield
    except sd.PortAudioError as e:
        raise LiveError(f"audio device: {e}") from e


def device_blocks(device: Any, block16k: int) -> Iterator[np.ndarray]:
    """Blocks of 16 kHz audio from an input device, until Ctrl-C."""
    sd = sounddevice()
    rate = int(_device(sd, device, "input")["default_samplerate"])
    to16k = Resampler(rate, ANALYSIS_RATE)
    frames = block16k * rate // ANALYSIS_RATE
    with _portaudio_errors(), sd.InputStream(device=device, channels=1, samplerate=rate,
                                            blocksize=frames, dtype="float32") as stream:  # fmt: skip
        while True:
            x, overflowed = stream.read(frames)
            if overflowed:  # the converter fell behind: input was dropped
                import logging

                logging.getLogger(__name__).warning("live: input overflow (audio dropped)")
            yield to16k(x[:, 0])


class DeviceSink:
    """Plays blocks at the model's rate on an output device (resampled to its rate)."""

    def __init__(self, device: Any, rate: int):
        sd = sounddevice()
        self.rate = int(_device(sd, device, "output")["default_samplerate"])
        self.resample = Resampler(rate, self.rate)
        with _portaudio_errors():
            self.stream = sd.OutputStream(device=device, channels=1, samplerate=self.rate,
                                          dtype="float32")  # fmt: skip
            self.stream.start()

    def __call__(self, y: np.ndarray) -> None:
        y = self.resample(y)
        if len(y):
            self.stream.write(np.ascontiguousarray(y, dtype=np.float32).reshape(-1, 1))

    def close(self) -> None:
        self.stream.stop()
        self.stream.close()


def loopback_delay(played: np.ndarray, recorded: np.ndarray, rate: int) -> float:
    """Seconds from a click in `played` to its echo in `recorded` (cross-correlation peak)."""
    from scipy import signal

    corr = signal.correlate(recorded, played, mode="full", method="fft")
    lag = int(np.argmax(np.abs(corr))) - (len(played) - 1)
    if lag < 0 or np.abs(corr).max() < 1e-3 * np.sum(played**2):
        raise LiveError(
            "no echo of the click came back: connect the output to the input (a cable, or a "
            "software loopback such as PulseAudio's null sink monitor)"
        )
    return lag / rate


def measure_latency(cfg: DictConfig) -> LiveResult:
    """Play a click on `output_device`, record `input_device`: the devices' round trip, plus
    the converter's algorithmic latency, is what a speaker hears end to end."""
    from rvc.infer.live import build_stream

    sd = sounddevice()
    rate = int(_device(sd, cfg.input_device, "input")["default_samplerate"])
    _device(sd, cfg.output_device, "output")
    t = np.arange(int(CLICK_S * rate)) / rate
    click = np.zeros(rate, dtype=np.float32)  # 1 s: the click at 0.1 s, then room for its echo
    click[rate // 10 : rate // 10 + len(t)] = 0.5 * np.sin(2 * np.pi * 1000 * t)
    with _portaudio_errors():
        recorded = sd.playrec(click, samplerate=rate, channels=1, dtype="float32",
                              device=(cfg.input_device, cfg.output_device), blocking=True)  # fmt: skip
    round_trip = loopback_delay(click, recorded[:, 0], rate)
    live = build_stream(cfg)
    stats = {"device_round_trip_s": round_trip, "total_latency_s": round_trip + live.latency_s}
    return LiveResult(live.latency_s, {**live.stats.summary(), **stats})
