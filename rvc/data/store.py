"""The feature store: one experiment folder holding slices, F0 and content features.

Layout (everything below `root`)::

    manifest.json              parameters, per-source records, per-stage records
    sliced/<spk>/<name>.wav    slices at the target sample rate (float wav)
    sliced16k/<spk>/<name>.wav the same slices at 16 kHz (input of F0 and embedders)
    f0/<spk>/<name>.npy        F0 in Hz per 10 ms frame (float32, 0 = unvoiced)
    f0c/<spk>/<name>.npy       coarse pitch 1..255 (int16), docs/formats.md §5
    features/<spk>/<name>.npy  content features per 20 ms frame [frames, dim] (float16)
    mute/features.npy          the embedder's features of 3 s of silence (training's mute slices)
    audit.json, audit.png      the dataset audit
    .lock                      held by the run writing the store (rvc/data/writer_lock.py)
    shards/<i>of<n>/           stores of a sharded extraction, each one complete like this one,
                               that `shard=merge` joins into this one (rvc/extract/shards.py)

The manifest is the single source of truth: a slice or stage output counts as done only once
the manifest records it, and the manifest is rewritten atomically after each unit of work, so
a run killed halfway resumes where it stopped and never trusts a half-written file.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rvc.data.writer_lock import StoreLockedError, hold  # noqa: F401  (the store's error, too)
from rvc.errors import RVCError
from rvc.formats import short_sha256
from rvc.utils import atomic

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
STAGE_DIRS = {"f0": ("f0", "f0c"), "features": ("features",)}
SLICE_KINDS = ("sliced", "sliced16k", "f0", "f0c", "features")  # a slice's files, by folder
SHARDS_DIR = "shards"  # other writers' stores inside this one: not this store's files
# knobs that change how fast a stage runs, never what it writes: changing them reuses outputs
RUNTIME_KEYS = frozenset({"batch_size", "device", "devices", "num_workers"})


def config_hash(obj: Any) -> str:
    """Stable short hash of a JSON-able object (stage parameters)."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return short_sha256(blob)


def outcome_hash(config: dict[str, Any]) -> str:
    """Hash of the stage options that change its outputs (RUNTIME_KEYS left out)."""
    return config_hash({k: v for k, v in config.items() if k not in RUNTIME_KEYS})


def array_hash(audio: np.ndarray) -> str:
    """Short sha256 of an array's bytes (slice identity for downstream stages)."""
    return short_sha256(np.ascontiguousarray(audio).tobytes())


class MissingMuteError(RVCError, FileNotFoundError):
    """The store has no (current) silence features for training's mute slices."""


@dataclass
class SliceRecord:
    """One slice: where it came from and what it holds."""

    name: str  # unique in the store, also the file stem
    speaker: int
    source: str  # path of the source file (SourceRecord.path)
    start: int  # sample range in the source at the target rate
    end: int
    n_samples: int  # at the target rate
    n_samples_16k: int
    sha: str  # hash of the 16 kHz audio: what downstream stages depend on


@dataclass
class SourceRecord:
    """One input file and the outcome of ingesting it."""

    path: str
    speaker: int
    content_hash: str
    params_hash: str  # slice parameters + trim: a change redoes this source
    status: str  # "ok" | "skipped" | "failed"
    reason: str = ""  # why skipped/failed, or warnings
    duration: float = 0.0  # seconds of input (after trim)
    usable: float = 0.0  # seconds of non-silent audio inside the slices
    stats: dict[str, float] = field(default_factory=dict)  # peak/rms/snr/clipping
    slices: list[str] = field(default_factory=list)


class FeatureStore:
    """Read/write access to one experiment folder."""

    def __init__(self, root: str | Path, read: bool = True):
        self.root = Path(root)
        self.params: dict[str, Any] = {}
        self.sources: dict[str, SourceRecord] = {}  # by path
        self.slices: dict[str, SliceRecord] = {}  # by name
        self.stages: dict[str, dict[str, Any]] = {}  # stage -> {config, hash, done: {name: sha}}
        if read and (self.root / MANIFEST).exists():
            self._read()

    # ---- manifest -------------------------------------------------------------------------
    def _read(self) -> None:
        path = self.root / MANIFEST
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: unreadable manifest ({e}); delete it to rebuild") from e
        if data.get("format") != FORMAT_VERSION:
            raise ValueError(f"{path}: manifest format {data.get('format')} != {FORMAT_VERSION}")
        self.params = data.get("params", {})
        self.sources = {k: SourceRecord(**v) for k, v in data.get("sources", {}).items()}
        self.slices = {k: SliceRecord(**v) for k, v in data.get("slices", {}).items()}
        self.stages = data.get("stages", {})

    def save(self) -> None:
        """Write the manifest atomically."""
        atomic.write_json(
            self.root / MANIFEST,
            {
                "format": FORMAT_VERSION,
                "params": self.params,
                "sources": {k: asdict(v) for k, v in self.sources.items()},
                "slices": {k: asdict(v) for k, v in self.slices.items()},
                "stages": self.stages,
            },
        )

    def clean_temp(self) -> None:
        """Remove temp files a killed run left behind (finished files are never temp)."""
        if self.root.exists():
            shards = self.root / SHARDS_DIR  # a shard's run may be writing there right now
            for p in self.root.rglob(".*"):
                if p.is_file() and p.name.count(".") >= 2 and not p.is_relative_to(shards):
                    p.unlink(missing_ok=True)

    # ---- paths ----------------------------------------------------------------------------
    def path(self, kind: str, rec: SliceRecord) -> Path:
        """File of a slice for `kind` in sliced, sliced16k, f0, f0c, features."""
        ext = ".wav" if kind.startswith("sliced") else ".npy"
        return self.root / kind / str(rec.speaker) / f"{rec.name}{ext}"

    # ---- sources and slices ---------------------------------------------------------------
    def source_is_current(self, path: str, content_hash: str, params_hash: str) -> bool:
        """True when `path` was ingested with this content and these parameters, files intact."""
        rec = self.sources.get(path)
        if rec is None or rec.content_hash != content_hash or rec.params_hash != params_hash:
            return False
        return all(
            s in self.slices
            and self.path("sliced", self.slices[s]).exists()
            and self.path("sliced16k", self.slices[s]).exists()
            for s in rec.slices
        )

    def put_source(self, rec: SourceRecord, slices: list[SliceRecord]) -> None:
        """Record a (re)ingested source, replacing its previous slices."""
        self.drop_source(rec.path, keep_record=True, keep=set(rec.slices))
        self.sources[rec.path] = rec
        for s in slices:
            was = self.slices.get(s.name)
            if was is not None and was.speaker != s.speaker:  # renumbered: its old folder's files
                for kind in ("sliced", "sliced16k", "f0", "f0c", "features"):
                    self.path(kind, was).unlink(missing_ok=True)
                for st in self.stages.values():
                    st.get("done", {}).pop(s.name, None)
            self.slices[s.name] = s

    def drop_source(
        self, path: str, keep_record: bool = False, keep: set[str] = frozenset()
    ) -> None:
        """Forget a source and delete its slice files and stage outputs (except `keep`)."""
        old = self.sources.get(path)
        if old is None:
            return
        for name in set(old.slices) - set(keep):
            rec = self.slices.pop(name, None)
            if rec is None:
                continue
            for kind in SLICE_KINDS:
                self.path(kind, rec).unlink(missing_ok=True)
            for st in self.stages.values():
                st.get("done", {}).pop(name, None)
        if not keep_record:
            del self.sources[path]

    # ---- stages ---------------------------------------------------------------------------
    def stage_todo(self, stage: str, config: dict[str, Any]) -> list[SliceRecord]:
        """Slices whose `stage` output is missing or stale for this config."""
        h = outcome_hash(config)
        st = self.stages.get(stage)
        # stores written before outcome_hash hashed the whole config: still theirs
        if st is None or st.get("hash") not in (h, config_hash(config)):
            st = self.stages[stage] = {"config": config, "hash": h, "done": {}}
        st.update(config=config, hash=h)
        done = st["done"]
        todo = []
        for rec in self.slices.values():
            ok = done.get(rec.name) == rec.sha and all(
                self.path(k, rec).exists() for k in STAGE_DIRS[stage]
            )
            if not ok:
                done.pop(rec.name, None)
                todo.append(rec)
        return todo

    def mark_done(self, stage: str, rec: SliceRecord) -> None:
        self.stages[stage]["done"][rec.name] = rec.sha

    def stage_complete(self, stage: str) -> bool:
        st = self.stages.get(stage)
        return bool(st) and all(st["done"].get(n) == r.sha for n, r in self.slices.items())

    def check_embedder(self, name: str, dim: int) -> None:
        """Refuse features made by another embedder (training/inference must match extraction)."""
        st = self.stages.get("features")
        if not st or not st.get("done"):
            raise ValueError(f"{self.root}: no content features extracted yet (run extract.py)")
        made = st["config"]  # the config the recorded ("done") features were made with
        if made.get("name") != name or int(made.get("dim") or -1) != int(dim):
            raise ValueError(
                f"{self.root}: features were extracted with embedder '{made.get('name')}' "
                f"({made.get('dim')}-dim), but '{name}' ({dim}-dim) was asked for; re-run "
                f"extract.py with that embedder or pick the matching one"
            )

    def lock(self) -> contextlib.AbstractContextManager[None]:
        """Hold the store for one writer; a second run on it fails fast, naming the holder."""
        return hold(self.root)

    # ---- loading (training, audit) ----------------------------------------------------------
    def ok_sources(self) -> list[SourceRecord]:
        return [s for s in self.sources.values() if s.status == "ok"]

    def load_f0(self, rec: SliceRecord) -> np.ndarray:
        return np.load(self.path("f0", rec))

    def load_features(self, rec: SliceRecord) -> np.ndarray:
        return np.load(self.path("features", rec))

    def mute_path(self) -> Path:
        """The embedder's features of 3 s of silence, [frames, dim] float16."""
        return self.root / "mute" / "features.npy"

    def load_mute_features(self) -> np.ndarray:
        """Silence features made with the current features config (manifest-recorded)."""
        # the flag lives in the features stage record, which a new embedder config resets
        recorded = bool(self.stages.get("features", {}).get("mute"))
        if not recorded or not self.mute_path().exists():
            raise MissingMuteError(
                f"{self.root}: no silence features for the current embedder "
                f"({'file missing' if recorded else 'not recorded in the manifest'}); "
                f"re-run extract.py (it adds the silence features), or set data.mute_slices=0"
            )
        return np.load(self.mute_path())
