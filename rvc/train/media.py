"""Audio samples and pictures from validation, sent to every logger a run has.

Files are always written under `<out_dir>/media/` (what a CSV-only run shows a person);
W&B and TensorBoard loggers get the same audio and images in their own formats.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import soundfile as sf

from rvc.formats import ANALYSIS_RATE
from rvc.utils.atomic import atomic_path


def save_wav(path: Path, audio: np.ndarray, sample_rate: int) -> Path:
    """Atomically write float audio [T] as a 16-bit wav."""
    with atomic_path(path, suffix=".wav") as tmp:
        sf.write(tmp, np.clip(audio, -1, 1), sample_rate, subtype="PCM_16")
    return path


def plot_mels(mels: Mapping[str, np.ndarray], path: str | os.PathLike, title: str = "") -> Path:
    """PNG of log-mel spectrograms [n_mels, frames] stacked top to bottom; returns `path`."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 2.4 * len(mels)), dpi=100)
    FigureCanvasAgg(fig)
    lo = min(float(m.min()) for m in mels.values())
    hi = max(float(m.max()) for m in mels.values())
    for i, (label, mel) in enumerate(mels.items()):
        ax = fig.add_subplot(len(mels), 1, i + 1)
        ax.imshow(mel, origin="lower", aspect="auto", vmin=lo, vmax=hi, interpolation="none")
        ax.set_ylabel(label)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    return path


def send_to_loggers(
    loggers: Iterable[object],
    step: int,
    audio: Mapping[str, np.ndarray],
    sample_rate: int,
    images: Mapping[str, Path],
) -> None:
    """Log audio clips and PNG images under their keys to W&B / TensorBoard loggers."""
    for logger in loggers:
        kind = type(logger).__name__
        if kind == "WandbLogger":
            for key, wav in audio.items():
                logger.log_audio(key=key, audios=[wav], step=step, sample_rate=[sample_rate])
            for key, png in images.items():
                logger.log_image(key=key, images=[str(png)], step=step)
        elif kind == "TensorBoardLogger":
            import torch
            from matplotlib.image import imread

            exp = logger.experiment
            for key, wav in audio.items():
                exp.add_audio(key, torch.from_numpy(wav)[None], step, sample_rate=sample_rate)
            for key, png in images.items():
                exp.add_image(key, imread(str(png))[..., :3], step, dataformats="HWC")


def output_f0(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """F0 [10 ms frames] of generated audio, by Praat's pitch tracker (fast, no weights)."""
    import soxr

    from rvc.f0.dsp import PMEstimator

    x16 = soxr.resample(audio, sample_rate, ANALYSIS_RATE).astype(np.float32)
    return PMEstimator().compute(x16)


def log_examples(
    loggers: Iterable[object],
    step: int,
    examples: list[dict[str, np.ndarray]],
    sample_rate: int,
    folder: Path,
) -> None:
    """Validation examples -> wavs, a mel picture and an F0 overlay per slice, to every logger."""
    from rvc.f0.plot import plot_f0

    audio: dict[str, np.ndarray] = {}
    images: dict[str, Path] = {}
    for i, ex in enumerate(examples):
        audio[f"val/audio/{i}/real"] = ex["real"]
        audio[f"val/audio/{i}/generated"] = ex["fake"]
        save_wav(folder / f"{i}_real.wav", ex["real"], sample_rate)
        save_wav(folder / f"{i}_generated.wav", ex["fake"], sample_rate)
        mels = {"real": ex["real_mel"], "generated": ex["fake_mel"]}
        images[f"val/mel/{i}"] = plot_mels(mels, folder / f"{i}_mel.png", f"slice {i}")
        f0 = {"input F0": ex["f0"], "output F0": output_f0(ex["fake"], sample_rate)}
        images[f"val/f0/{i}"] = plot_f0(f0, folder / f"{i}_f0.png", title=f"slice {i}")
    send_to_loggers(loggers, step, audio, sample_rate, images)
