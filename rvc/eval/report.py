"""The evaluation report: `report.json`, PNG plots and a small `report.html`; and a table
comparing several reports (the runs of a sweep)."""

from __future__ import annotations

import html
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from rvc.utils import atomic

METRICS = {  # key → (column title, better when)
    "spk_sim_target": ("similarity to target ↑", "high"),
    "spk_sim_source": ("similarity to source", "low"),
    "f0_rmse_cents": ("F0 RMSE (cents) ↓", "low"),
    "vuv_error": ("V/UV error ↓", "low"),
    "mcd": ("MCD (dB) ↓", "low"),
    "log_mel_l1": ("log-mel L1 ↓", "low"),
    "rtf": ("RTF ↓", "low"),
}


def _fmt(v: Any) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def plot_similarity(names: list[str], target: list[float], source: list[float], path: Path) -> Path:
    """Bars per clip: speaker similarity to the target voice and to the input."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(6, 0.6 * len(names) + 2), 3.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(names))
    ax.bar(x - 0.2, target, 0.4, label="to target")
    ax.bar(x + 0.2, source, 0.4, label="to source")
    ax.set_xticks(x, names, rotation=45, ha="right", fontsize="small")
    ax.set_ylabel("cosine similarity")
    ax.set_ylim(min(0.0, *target, *source), 1.0)
    ax.legend(fontsize="small")
    fig.tight_layout()
    with atomic.atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    return path


def write_report(
    report: Any, tracks: dict[str, dict[str, np.ndarray]], sr: int, out_dir: Path
) -> Path:
    """Write report.json, the plots and report.html under `out_dir`; returns the HTML path."""
    from rvc.eval.metrics import _log_mel
    from rvc.f0.plot import plot_f0
    from rvc.train.media import plot_mels

    plots = out_dir / "plots"
    for item in report.items:
        tr = tracks[item.name]
        f0 = plot_f0({"input (shifted)": tr["f0_in"], "output": tr["f0_out"]}, plots / f"{item.name}_f0.png",
                     title=f"{item.name}: F0")  # fmt: skip
        mel = plot_mels({"input": _log_mel(tr["in"], sr), "output": _log_mel(tr["out"], sr)},
                        plots / f"{item.name}_mel.png", title=f"{item.name}: log-mel")  # fmt: skip
        item.plots = {"f0": str(f0.relative_to(out_dir)), "mel": str(mel.relative_to(out_dir))}
    names = [i.name for i in report.items]
    sim = plot_similarity(names, [i.spk_sim_target for i in report.items],
                          [i.spk_sim_source for i in report.items], plots / "similarity.png")  # fmt: skip
    data = report.to_json()
    atomic.write_json(out_dir / "report.json", data)
    return write_html(data, str(sim.relative_to(out_dir)), out_dir / "report.html")


def write_html(data: dict[str, Any], similarity_png: str, path: Path) -> Path:
    esc = html.escape
    summary = "".join(
        f"<tr><td>{esc(METRICS[k][0])}</td><td>{_fmt(v)}</td></tr>"
        for k, v in data["summary"].items()
    )
    head = "".join(f"<th>{esc(METRICS[k][0])}</th>" for k in METRICS)
    rows = []
    for it in data["items"]:
        cells = "".join(f"<td>{_fmt(it[k])}</td>" for k in METRICS)
        pics = "".join(f'<img src="{esc(p)}" width="480">' for p in it["plots"].values())
        rows.append(f"<tr><td>{esc(it['name'])}</td><td>{esc(it['kind'])}</td>{cells}</tr>"
                    f"<tr><td colspan='{len(METRICS) + 2}'>{pics}</td></tr>")  # fmt: skip
    page = f"""<!doctype html><meta charset="utf-8"><title>Evaluation: {esc(data["voice"])}</title>
<style>body{{font-family:sans-serif;margin:2em}} td,th{{padding:4px 8px;border-bottom:1px solid #ddd}}</style>
<h1>Evaluation of {esc(Path(data["voice"]).name)}</h1>
<h2>Summary (means)</h2><table>{summary}</table>
<h2>Speaker similarity per clip</h2><img src="{esc(similarity_png)}">
<h2>Clips</h2><table><tr><th>clip</th><th>kind</th>{head}</tr>{"".join(rows)}</table>
"""
    atomic.write_text(path, page)
    return path


def compare(reports: list[str | os.PathLike]) -> str:
    """A Markdown table of the summaries of several report.json files (one row per run)."""
    head = "| run | " + " | ".join(METRICS[k][0] for k in METRICS) + " |"
    lines = [head, "|" + "---|" * (len(METRICS) + 1)]
    for p in reports:
        path = Path(p)
        data = json.loads(path.read_text(encoding="utf-8"))
        run = path.parent.parent.name if path.parent.name == "eval" else path.parent.name
        lines.append(
            f"| {run} | " + " | ".join(_fmt(data["summary"].get(k)) for k in METRICS) + " |"
        )
    return "\n".join(lines)
