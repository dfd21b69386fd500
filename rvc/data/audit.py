"""The dataset audit: is this enough clean voice to train on, and for how many epochs?"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rvc.data.store import FeatureStore
from rvc.formats import ANALYSIS_RATE
from rvc.utils import atomic

# (minutes of clean voice, recommended epochs): the rule of thumb RVC users follow —
# ~4 min → 600–1200 (overfitting risk), 10–15 min recommended, 20–60 min → 200–400.
_EPOCH_ANCHORS = ((2.0, 1000), (4.0, 900), (10.0, 500), (20.0, 400), (60.0, 200), (120.0, 150))


def recommend_epochs(minutes: float) -> dict[str, Any]:
    """Recommended epoch count (log-linear between anchors) and a note for the user."""
    xs = [math.log(m) for m, _ in _EPOCH_ANCHORS]
    ys = [e for _, e in _EPOCH_ANCHORS]
    epochs = int(round(np.interp(math.log(max(minutes, 1e-3)), xs, ys) / 10) * 10)
    if minutes < 4:
        note = "very little data: expect overfitting; 10–15 min of clean voice is recommended"
    elif minutes < 10:
        note = "usable but short: watch the validation loss for overfitting; 10–15+ min is better"
    elif minutes <= 60:
        note = "good amount of data"
    else:
        note = "large dataset: fewer epochs are needed"
    return {"epochs": epochs, "range": [int(epochs * 0.75), int(epochs * 1.25)], "note": note}


def build_audit(store: FeatureStore) -> dict[str, Any]:
    """Summarise the store: minutes, slices, dropped files and why, SNR, F0 range."""
    ok = store.ok_sources()
    dropped = [
        {"file": s.path, "status": s.status, "reason": s.reason}
        for s in store.sources.values()
        if s.status != "ok"
    ]
    warnings = [{"file": s.path, "warning": s.reason} for s in ok if s.reason]
    snrs = [s.stats["snr_db"] for s in ok if math.isfinite(s.stats.get("snr_db", math.nan))]
    lengths = _slice_seconds(store)
    usable_min = sum(s.usable for s in ok) / 60
    audit: dict[str, Any] = {
        "experiment": str(store.root),
        "files": len(store.sources),
        "files_used": len(ok),
        "total_minutes": round(sum(s.duration for s in store.sources.values()) / 60, 3),
        "usable_minutes": round(usable_min, 3),
        "slices": len(store.slices),
        "speakers": sorted({s.speaker for s in ok}),
        "slice_seconds": _describe(lengths),
        "snr_db_median": round(float(np.median(snrs)), 1) if snrs else None,
        "dropped": dropped,
        "warnings": warnings,
        "recommendation": recommend_epochs(usable_min),
    }
    f0 = _voiced_f0(store)
    if f0 is not None and f0.size:
        p5, p50, p95 = np.percentile(f0, [5, 50, 95])
        audit["f0_hz"] = {"p5": round(p5, 1), "median": round(p50, 1), "p95": round(p95, 1)}
    for stage in ("f0", "features"):
        if stage in store.stages:
            st = store.stages[stage]
            missing = [n for n, r in store.slices.items() if st["done"].get(n) != r.sha]
            audit[f"{stage}_missing"] = missing
    return audit


def _slice_seconds(store: FeatureStore) -> list[float]:
    # from the 16 kHz copy: its rate is fixed, so no guess when the store's params lack a rate
    return [r.n_samples_16k / ANALYSIS_RATE for r in store.slices.values()]


def _describe(xs: list[float]) -> dict[str, float]:
    if not xs:
        return {}
    a = np.asarray(xs)
    return {"min": round(a.min(), 2), "mean": round(a.mean(), 2), "max": round(a.max(), 2)}


def _voiced_f0(store: FeatureStore) -> np.ndarray | None:
    st = store.stages.get("f0")
    if not st:
        return None
    parts = []
    for name, sha in st["done"].items():
        rec = store.slices.get(name)
        if rec is not None and rec.sha == sha:
            f0 = store.load_f0(rec)
            parts.append(f0[f0 > 0])
    return np.concatenate(parts) if parts else np.zeros(0)


def save_audit(store: FeatureStore, audit: dict[str, Any]) -> None:
    """Write audit.json and the histogram plots (slice lengths, pitch)."""
    atomic.write_json(store.root / "audit.json", audit)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    f0 = _voiced_f0(store)
    n = 2 if f0 is not None and f0.size else 1
    fig, axes = plt.subplots(1, n, figsize=(5 * n, 3.2), squeeze=False)
    axes[0, 0].hist(_slice_seconds(store), bins=30, color="tab:blue")
    axes[0, 0].set(title="slice lengths", xlabel="seconds", ylabel="slices")
    if n == 2:
        axes[0, 1].hist(f0, bins=np.geomspace(50, 1100, 60), color="tab:orange")
        axes[0, 1].set(title="pitch (voiced frames)", xlabel="Hz", xscale="log", ylabel="frames")
    fig.tight_layout()
    with atomic.atomic_path(store.root / "audit.png") as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


def print_audit(audit: dict[str, Any]) -> None:
    """Print the audit as a rich table."""
    from rich.console import Console
    from rich.markup import escape  # file names like "take[/x].wav" are not markup
    from rich.table import Table

    # no borders: the audit is a few key-value lines, the demo output should fit on one screen
    t = Table(
        title=escape(f"dataset audit: {audit['experiment']}"),
        show_header=False,
        box=None,
        title_justify="left",
    )
    rec = audit["recommendation"]
    rows = [
        ("files used", f"{audit['files_used']} of {audit['files']}"),
        ("total minutes", f"{audit['total_minutes']:.2f}"),
        ("usable minutes", f"{audit['usable_minutes']:.2f}"),
        ("slices", str(audit["slices"])),
        ("speaker ids", ", ".join(map(str, audit["speakers"])) or "none"),
        ("SNR estimate", f"{audit['snr_db_median']} dB" if audit["snr_db_median"] else "n/a"),
    ]
    if "f0_hz" in audit:
        f = audit["f0_hz"]
        rows.append(("F0 range (p5–p95)", f"{f['p5']}–{f['p95']} Hz (median {f['median']})"))
    rows.append(("recommended epochs", f"{rec['epochs']} ({rec['range'][0]}–{rec['range'][1]})"))
    rows.append(("advice", rec["note"]))
    for k, v in rows:
        t.add_row(k, escape(v))
    console = Console()
    console.print(t)
    for d in audit["dropped"]:
        console.print(f"[red]dropped[/red] {escape(d['file'])}: {escape(d['reason'])}")
    for w in audit["warnings"]:
        console.print(f"[yellow]warning[/yellow] {escape(w['file'])}: {escape(w['warning'])}")
    for stage in ("f0", "features"):
        if audit.get(f"{stage}_missing"):
            console.print(f"[red]{stage} missing[/red] for {len(audit[f'{stage}_missing'])} slices")
