"""Evaluate a voice model: convert held-out slices (and any test audio) and measure the result.

Held-out slices are the training run's own validation split (`split_names` with the same
`val_slices` and seed): each is converted back into the voice through the inference path
(`VoiceConverter.convert`, pitch 0) and compared with the real slice (MCD, log-mel L1). Test
files are other recordings converted with the given options. For both: speaker similarity to
the target voice (a d-vector from training slices) and to the input, F0 error against the
shifted input F0 (same estimator on both), and the real-time factor.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rvc.eval import metrics
from rvc.formats import ANALYSIS_RATE


@dataclass
class ItemScore:
    """One converted clip."""

    name: str
    kind: str  # "heldout" (reconstruction of a real slice) or "test" (another recording)
    seconds: float
    rtf: float
    spk_sim_target: float
    spk_sim_source: float
    f0_rmse_cents: float
    vuv_error: float
    mcd: float = math.nan  # held-out slices only
    log_mel_l1: float = math.nan
    plots: dict[str, str] = field(default_factory=dict)


@dataclass
class Report:
    voice: str
    items: list[ItemScore]
    options: dict[str, Any]

    def summary(self) -> dict[str, float]:
        """Mean of each metric over the clips that have it."""
        keys = (
            "spk_sim_target",
            "spk_sim_source",
            "f0_rmse_cents",
            "vuv_error",
            "mcd",
            "log_mel_l1",
            "rtf",
        )
        out = {}
        for k in keys:
            vals = [getattr(i, k) for i in self.items if math.isfinite(getattr(i, k))]
            out[k] = float(np.mean(vals)) if vals else math.nan
        return out

    def to_json(self) -> dict[str, Any]:
        return {"voice": self.voice, "summary": self.summary(), "options": self.options,
                "items": [asdict(i) for i in self.items]}  # fmt: skip


def target_embedding(clips: list[np.ndarray], sr: int) -> np.ndarray:
    """The target voice's d-vector: the normalised mean over a few real clips."""
    embs = [metrics.speaker_embedding(c, sr) for c in clips if len(c) >= sr // 10]
    if not embs:
        raise ValueError("no usable reference clip of the target voice")
    m = np.mean(embs, axis=0)
    return m / np.linalg.norm(m)


def score(
    name: str,
    kind: str,
    source16k: np.ndarray,
    output: np.ndarray,
    out_sr: int,
    target: np.ndarray,
    f0_fn: Any,
    semitones: float,
    elapsed: float,
    real: np.ndarray | None = None,
) -> tuple[ItemScore, dict[str, np.ndarray]]:
    """Metrics of one conversion, and the tracks to plot."""
    from rvc.audio.process import resample

    out16 = resample(output, out_sr, ANALYSIS_RATE)
    f0_in, f0_out = f0_fn(source16k.astype(np.float32)), f0_fn(out16.astype(np.float32))
    rmse, vuv = metrics.f0_errors(f0_in, f0_out, semitones)
    emb_out = metrics.speaker_embedding(output, out_sr)
    seconds = len(source16k) / ANALYSIS_RATE
    item = ItemScore(
        name=name, kind=kind, seconds=seconds, rtf=elapsed / seconds,
        spk_sim_target=float(emb_out @ target),
        spk_sim_source=float(emb_out @ metrics.speaker_embedding(source16k, ANALYSIS_RATE)),
        f0_rmse_cents=rmse, vuv_error=vuv,
    )  # fmt: skip
    if real is not None:
        item.mcd = metrics.mel_cepstral_distortion(real, output, out_sr)
        item.log_mel_l1 = metrics.log_mel_l1(real, output, out_sr)
    shifted = np.asarray(f0_in) * 2.0 ** (semitones / 12.0)
    tracks = {"f0_in": shifted, "f0_out": np.asarray(f0_out), "out": output,
              "in": real if real is not None else resample(source16k, ANALYSIS_RATE, out_sr)}  # fmt: skip
    return item, tracks


def heldout_slices(
    exp_dir: Path, val_slices: float | int, seed: int, limit: int, val_speakers=0
) -> tuple[list, list]:
    """(held-out records, training records) of a store, split as training split them."""
    from rvc.data.datamodule import split_slices, usable_slices
    from rvc.data.store import FeatureStore

    store = FeatureStore(exp_dir)
    recs = usable_slices(store)
    train, val, _ = split_slices(recs, val_slices, seed, val_speakers)
    return store, [recs[n] for n in val[:limit]], [recs[n] for n in train]


def evaluate(
    converter: Any,
    exp_dir: str | Path | None,
    test_inputs: list[str],
    opts: Any,
    out_dir: str | Path,
    f0_fn: Any,
    val_slices: float | int = 0.1,
    seed: int = 1234,
    max_items: int = 8,
    val_speakers: int | list[int] = 0,
    target_clips: int = 5,
    progress: bool = True,
) -> Report:
    """Convert and score held-out slices (from `exp_dir`) and test files; write the report."""
    import soundfile as sf
    from tqdm.auto import tqdm

    from rvc.eval.report import write_report
    from rvc.infer.run import expand_inputs, load_input

    sr = converter.sample_rate
    jobs: list[tuple[str, str, np.ndarray, np.ndarray | None]] = []
    refs: list[np.ndarray] = []
    if exp_dir is not None:
        store, held, train = heldout_slices(
            Path(exp_dir), val_slices, seed, max_items, val_speakers
        )
        refs = [sf.read(store.path("sliced", r), dtype="float32")[0] for r in train[:target_clips]]
        for rec in held:
            src = sf.read(store.path("sliced16k", rec), dtype="float32")[0]
            real = sf.read(store.path("sliced", rec), dtype="float32")[0]
            jobs.append((rec.name, "heldout", src, real))
    files, failed = expand_inputs(list(test_inputs), Path(out_dir) / "downloads")
    if failed:
        raise ValueError("; ".join(f"{f.source}: {f.error}" for f in failed))
    for path, label in files[:max_items]:
        jobs.append((Path(label).stem, "test", load_input(path), None))
    if not jobs:
        raise ValueError("nothing to evaluate: no held-out slices and no test inputs")
    if not refs:
        raise ValueError(
            "the target voice needs reference clips: give the experiment's store (exp_dir)"
        )
    target = target_embedding(refs, sr)
    items, tracks = [], {}
    for name, kind, src, real in tqdm(jobs, desc="evaluate", unit="clip", disable=not progress):
        t = time.perf_counter()
        out = converter.convert(
            src, opts.with_(pitch=0.0) if kind == "heldout" else opts, progress=False
        )
        elapsed = time.perf_counter() - t
        semis = 0.0 if kind == "heldout" else opts.pitch
        item, tr = score(name, kind, src, out, sr, target, f0_fn, semis, elapsed, real)
        items.append(item)
        tracks[name] = tr
    report = Report(
        voice=str(getattr(converter.voice, "path", "")), items=items, options=asdict(opts)
    )
    write_report(report, tracks, sr, Path(out_dir))
    return report
