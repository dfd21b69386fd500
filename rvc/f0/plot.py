"""Plot F0 contours to a PNG (matplotlib Agg, no pyplot state), written atomically."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from rvc.f0.base import HOP, SAMPLE_RATE
from rvc.utils.atomic import atomic_path


def plot_f0(
    f0: np.ndarray | Mapping[str, np.ndarray],
    path: str | os.PathLike,
    title: str = "",
    log_scale: bool = True,
) -> Path:
    """Write a PNG of one F0 track [frames] (Hz, 0 = unvoiced) or several labelled ones; returns `path`.

    Unvoiced frames are gaps; the time axis assumes 10 ms frames.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    tracks = dict(f0) if isinstance(f0, Mapping) else {"": f0}
    fig = Figure(figsize=(10, 3.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    any_voiced = False
    for label, track in tracks.items():
        y = np.asarray(track, dtype=np.float64).reshape(-1)
        if y.size == 0:
            continue
        y = np.where(y > 0, y, np.nan)  # gaps where unvoiced
        any_voiced |= bool(np.isfinite(y).any())
        t = np.arange(len(y)) * HOP / SAMPLE_RATE
        ax.plot(t, y, linewidth=1.0, label=label or None)
    if log_scale and any_voiced:
        ax.set_yscale("log")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("F0 (Hz)")
    if title:
        ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper right", fontsize="small")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    return path
