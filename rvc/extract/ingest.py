"""Ingest one source file: decode, check, clean, slice, write target-rate and 16 kHz slices.

`ingest_source` is a pure function of (file, parameters) → records + files, so files can be
ingested in parallel (worker threads); the caller owns the manifest.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rvc.audio import process, slicer
from rvc.audio import read as audio_read
from rvc.data.store import SliceRecord, SourceRecord, array_hash
from rvc.formats import ANALYSIS_RATE, short_sha256
from rvc.models.layouts import SAMPLE_RATES


@dataclass(frozen=True)
class SliceParams:
    """Everything that decides the slices of a source (hashed into the manifest).

    No defaults here: the values and their meanings live in `rvc/conf/slicing/default.yaml`
    (the `slicing` config group); `sample_rate` comes from the model.
    """

    sample_rate: int
    split: str  # auto | simple | skip
    threshold_db: float
    min_length: float
    min_interval: float
    max_sil_kept: float
    chunk_len: float
    overlap: float
    normalize: str  # none | pre | post
    highpass: float | None
    denoise: bool
    # quality gates: files failing them are skipped with a reason
    min_duration: float
    silence_db: float
    max_clipped: float

    def __post_init__(self) -> None:
        if self.split not in ("auto", "simple", "skip"):
            raise ValueError(f"slicing.split must be auto, simple or skip, not '{self.split}'")
        if self.normalize not in ("none", "pre", "post"):
            raise ValueError(f"slicing.normalize must be none, pre or post, not '{self.normalize}'")
        if self.sample_rate not in SAMPLE_RATES:
            rates = ", ".join(map(str, SAMPLE_RATES))
            raise ValueError(f"sample_rate must be one of {rates}, not {self.sample_rate}")
        if not 0 < self.chunk_len or not 0 <= self.overlap < self.chunk_len:
            raise ValueError(
                f"need chunk_len > 0 and 0 <= overlap < chunk_len, got {self.chunk_len}/{self.overlap}"
            )
        for name in ("min_length", "min_interval", "max_sil_kept", "min_duration"):
            if getattr(self, name) < 0:
                raise ValueError(f"slicing.{name} must be >= 0, not {getattr(self, name)}")


def source_tag(path: str | Path) -> str:
    """The 4 hex digits of a source's path in its slice names; also picks its extraction shard
    (rvc/extract/shards.py), so sources whose names could collide share a shard."""
    return short_sha256(str(path).encode(), 4)


def slice_name(path: Path, content_hash: str, params_hash: str, k: int) -> str:
    """Stable, unique slice name.

    Content, path and parameters are all in it: a re-slice never overwrites, and identical
    files in two folders (two speakers) stay apart.
    """
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", path.stem)[:40].strip("-") or "audio"
    return f"{stem}_{content_hash[:8]}{source_tag(path)}{params_hash[:4]}_{k:04d}"


def _ranges(audio: np.ndarray, p: SliceParams) -> list[tuple[int, int]]:
    sr = p.sample_rate
    if p.split == "skip":
        return slicer.slice_skip(audio)
    if p.split == "simple":
        return slicer.slice_simple(audio, sr, chunk_len=p.chunk_len, overlap=p.overlap)
    return slicer.slice_auto(
        audio,
        sr,
        threshold_db=p.threshold_db,
        min_length=p.min_length,
        min_interval=p.min_interval,
        max_sil_kept=p.max_sil_kept,
        chunk_len=p.chunk_len,
        overlap=p.overlap,
    )


def _voiced_seconds(
    audio: np.ndarray, sr: int, ranges: list[tuple[int, int]], threshold_db: float
) -> float:
    """Seconds of non-silent 10 ms frames inside the slices: the "minutes of clean voice"."""
    hop = sr // 100
    n = len(audio) // hop
    if n == 0:
        return 0.0
    power = np.mean(np.square(audio[: n * hop].reshape(n, hop), dtype=np.float64), axis=1)
    loud = 10 * np.log10(power + 1e-12) > threshold_db
    covered = np.zeros(n, dtype=bool)
    for a, b in ranges:
        covered[a // hop : -(-b // hop)] = True
    return float(np.count_nonzero(loud & covered)) / 100


def ingest_source(*args: Any, **kwargs: Any) -> tuple[SourceRecord, list[SliceRecord]]:
    """`_ingest` for one file; any failure becomes that file's "failed" record, not a crash."""
    try:
        return _ingest(*args, **kwargs)
    except Exception as e:  # one odd file must not stop a run over hundreds
        logging.getLogger(__name__).debug("ingest failed", exc_info=True)
        path, speaker, content_hash, params_hash = args[:4]
        rec = SourceRecord(str(path), speaker, content_hash, params_hash, status="failed")
        rec.reason = f"{path}: {type(e).__name__}: {e}"
        return rec, []


def _ingest(
    path: str,
    speaker: int,
    content_hash: str,
    params_hash: str,
    params: dict[str, Any],
    root: str,
    start: float | None = None,
    end: float | None = None,
) -> tuple[SourceRecord, list[SliceRecord]]:
    """Decode, check, clean and slice one file; write its slices under `root`."""
    p = SliceParams(**params)
    src = Path(path)
    rec = SourceRecord(str(path), speaker, content_hash, params_hash, status="ok")

    def skip(status: str, reason: str) -> tuple[SourceRecord, list[SliceRecord]]:
        rec.status, rec.reason = status, reason
        return rec, []

    try:
        audio, native_sr = audio_read.load_audio(src, sr=None, start=start, end=end)
    except audio_read.AudioDecodeError as e:
        return skip("failed", str(e))

    rec.duration = len(audio) / native_sr
    warnings = []
    if native_sr < ANALYSIS_RATE:
        warnings.append(f"low sample rate {native_sr} Hz: upsampled, lacks high frequencies")
    if rec.duration < p.min_duration:
        return skip("skipped", f"too short ({rec.duration:.2f} s < {p.min_duration} s)")
    rec.stats = {
        "peak_db": float(process.peak_db(audio)),
        "rms_db": float(process.rms_db(audio)),
        "clipped": float(process.clipped_fraction(audio)),
        "snr_db": float(process.estimate_snr_db(audio, native_sr)),
        "native_sr": float(native_sr),
    }
    if process.is_silent(audio, threshold_db=p.silence_db):
        return skip("skipped", f"silent (peak {rec.stats['peak_db']:.1f} dBFS)")
    if rec.stats["clipped"] > p.max_clipped:
        return skip(
            "skipped", f"clipped ({100 * rec.stats['clipped']:.1f}% of samples at full scale)"
        )

    audio = process.resample(audio, native_sr, p.sample_rate)
    if p.highpass:
        audio = process.highpass(audio, p.sample_rate, cutoff=p.highpass)
    if p.denoise:
        audio = process.reduce_noise(audio, p.sample_rate)
    if p.normalize == "pre":
        audio = process.normalize(audio)

    ranges = _ranges(audio, p)
    rec.usable = _voiced_seconds(audio, p.sample_rate, ranges, p.threshold_db)
    slices = []
    for k, (a, b) in enumerate(ranges):
        chunk = audio[a:b]
        if p.normalize == "post":
            chunk = process.normalize(chunk)
        if not np.isfinite(chunk).all() or np.abs(chunk).max() == 0:
            continue
        chunk16 = process.resample(chunk, p.sample_rate, ANALYSIS_RATE).astype(np.float32)
        name = slice_name(src, content_hash, params_hash, k)
        s = SliceRecord(
            name, speaker, rec.path, a, b, len(chunk), len(chunk16), array_hash(chunk16)
        )
        out = Path(root)
        audio_read.save_wav(out / "sliced" / str(speaker) / f"{name}.wav", chunk, p.sample_rate)
        audio_read.save_wav(
            out / "sliced16k" / str(speaker) / f"{name}.wav", chunk16, ANALYSIS_RATE
        )
        slices.append(s)
    if not slices:
        return skip("skipped", "no voiced region long enough to slice " + "; ".join(warnings))
    rec.slices = [s.name for s in slices]
    rec.reason = "; ".join(warnings)
    return rec, slices
