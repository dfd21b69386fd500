"""Extraction sharded across jobs: `shard=i/n` extracts 1/n of the sources into a store of its
own, `shard=merge` joins the n stores into the experiment's one.

A store has one manifest and one writer (its `.lock`), so n jobs cannot share one: shard i of
n is a complete FeatureStore at `<exp_dir>/shards/<i>of<n>/`, resumable and incremental like an
unsharded run. A source belongs to the shard its path's tag (the one in its slice names,
`ingest.source_tag`) picks modulo n: adding inputs never moves a source to another shard, and
two sources whose slice names could collide always share one.

The merge runs under the experiment store's lock and each shard's: it hard-links the shards'
files into `<exp_dir>` (copies where links fail), unions their records and writes the manifest
once, at the end. Training reads that one store, as ever. Hard links are safe because every
store write is atomic (a new file renamed over the old): rewriting a shard file never changes
the merged store's copy.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rvc.data import audit as audit_mod
from rvc.data.store import (
    MANIFEST,
    RUNTIME_KEYS,
    SHARDS_DIR,
    SLICE_KINDS,
    STAGE_DIRS,
    FeatureStore,
    SliceRecord,
    SourceRecord,
    StoreLockedError,
    config_hash,
    hold,
    outcome_hash,
)
from rvc.extract.ingest import source_tag
from rvc.extract.run import ExtractError, ExtractResult
from rvc.utils import atomic

log = logging.getLogger(__name__)
MERGE = "merge"
_SHARD = re.compile(r"(\d+)/(\d+)")
_SHARD_DIR = re.compile(r"(\d+)of(\d+)")
_STAGE_OF = {kind: stage for stage, kinds in STAGE_DIRS.items() for kind in kinds}
# silence features of two shards: bit-equal on one kind of device; another GPU may round an
# fp16 value differently (the same tolerance as tests/extract/test_run.py's device shards)
_MUTE_TOL = {"atol": 5e-3, "rtol": 1e-2}


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count`: the sources it extracts and the store it writes."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def root(self, exp_dir: str | Path) -> Path:
        return Path(exp_dir) / SHARDS_DIR / f"{self.index}of{self.count}"

    def owns(self, key: str) -> bool:
        """Whether the source at `key` (resolved path, or URL before its download) is ours."""
        return int(source_tag(key), 16) % self.count == self.index

    def begin(self, store: FeatureStore) -> None:
        """Mark the shard unfinished until `finish`: a killed run cannot be merged."""
        store.params["shard"] = {
            **store.params.get("shard", {}),
            "of": str(self),
            "finished": False,
        }
        store.save()

    def saw(self, store: FeatureStore, keys: set[str]) -> None:
        """Record which sources the inputs listed (all shards'): shards must agree on them."""
        store.params["shard"].update(inputs=config_hash(sorted(keys)), files=len(keys))

    def finish(self, store: FeatureStore) -> None:
        store.params["shard"]["finished"] = True
        store.save()


def parse(value: Any) -> Shard | str | None:
    """`cfg.shard`: None (no sharding), "merge", or the Shard of "i/n" (0 <= i < n)."""
    if value is None:
        return None
    text = str(value).strip()
    if text == MERGE:
        return MERGE
    m = _SHARD.fullmatch(text)
    if m and int(m[1]) < int(m[2]):
        return Shard(int(m[1]), int(m[2]))
    raise ExtractError(
        f"shard={value}: expected i/n with 0 <= i < n (shard=0/8 … shard=7/8), or shard=merge"
    )


def merge(exp_dir: str | Path) -> ExtractResult:
    """Join the finished shards under `exp_dir` into the store at `exp_dir` (idempotent)."""
    root = Path(exp_dir)
    try:
        with hold(root), contextlib.ExitStack() as held:
            shards = _find(root)
            for s in shards:  # a shard still being written is not merged half-done
                try:
                    held.enter_context(hold(s.root(root)))
                except StoreLockedError as e:
                    raise ExtractError(f"shard {s} is still running: {e}") from e
            return _merge_locked(root, {s: _open(s, root) for s in shards})
    except StoreLockedError as e:
        raise ExtractError(str(e)) from e


def _find(root: Path) -> list[Shard]:
    base = root / SHARDS_DIR
    found = set()
    for p in base.iterdir() if base.is_dir() else ():
        m = _SHARD_DIR.fullmatch(p.name)
        if m and p.is_dir() and int(m[1]) < int(m[2]):
            found.add(Shard(int(m[1]), int(m[2])))
    if not found:
        raise ExtractError(f"{base}: no shards to merge; run extract.py with shard=0/n … first")
    counts = sorted({s.count for s in found})
    if len(counts) > 1:
        raise ExtractError(
            f"{base}: shards of {' and '.join(map(str, counts))} jobs; merge one sharding: "
            "delete the other's folders"
        )
    every = [Shard(i, counts[0]) for i in range(counts[0])]
    missing = [str(s) for s in every if not (s.root(root) / MANIFEST).exists()]
    if missing:
        raise ExtractError(
            f"missing shards {', '.join(missing)} in {base}: run extract.py with "
            f"shard={missing[0]} (and each other missing one), then merge again"
        )
    return every


def _open(shard: Shard, root: Path) -> FeatureStore:
    try:
        store = FeatureStore(shard.root(root))
    except ValueError as e:
        raise ExtractError(f"shard {shard}: {e}") from e
    if not store.params.get("shard", {}).get("finished"):
        raise ExtractError(
            f"shard {shard} did not finish ({store.root}): rerun extract.py with shard={shard} "
            "(it redoes only the unfinished work), then merge again"
        )
    return store


def _agreed(store: FeatureStore) -> dict[str, Any]:
    """What every shard must share: slicing, the inputs, each stage's outcome options."""
    shard = store.params["shard"]
    params = {k: v for k, v in store.params.items() if k != "shard"}
    params["shard"] = {"inputs": shard.get("inputs")}
    stages = {
        st: {k: v for k, v in rec["config"].items() if k not in RUNTIME_KEYS}
        for st, rec in store.stages.items()
    }
    return {"params": params, "stages": stages}


def _differs(a: Any, b: Any, key: str) -> str | None:
    """The first dotted key at which `a` and `b` differ, None where they are equal."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            if k not in a or k not in b:
                return f"{key}.{k}"
            if (d := _differs(a[k], b[k], f"{key}.{k}")) is not None:
                return d
        return None
    return None if a == b else key


def _lookup(obj: Any, key: str) -> str:
    for k in key.split("."):
        if not isinstance(obj, dict) or k not in obj:
            return "absent"
        obj = obj[k]
    return f"hash {config_hash(obj)}" if isinstance(obj, (dict, list)) else repr(obj)


def _check_alike(stores: dict[Shard, FeatureStore]) -> None:
    (ref, first), *others = stores.items()
    want = _agreed(first)
    for s, store in others:
        have = _agreed(store)
        key = _differs(want, have, "")
        if key is not None:
            key = key.lstrip(".")
            if key == "params.shard.inputs":  # either may be the stale one: name both
                files = [st.params["shard"].get("files") for st in (first, store)]
                raise ExtractError(
                    f"shards {ref} and {s} listed other inputs at params.shard.inputs "
                    f"({files[0]} and {files[1]} files): rerun with the same inputs= each shard "
                    "that ran before they changed, then merge again"
                )
            what = f"{_lookup(have, key)}, not {_lookup(want, key)}"
            raise ExtractError(
                f"shard {s} differs from shard {ref} at {key} ({what}): rerun shard {s} with "
                f"the options and inputs of the others, then merge again"
            )


def _mute(stores: dict[Shard, FeatureStore]) -> Path | None:
    """One shard's silence features, checked against the others'; None if none made them."""
    have = [
        (s, st)
        for s, st in stores.items()
        if st.stages.get("features", {}).get("mute") and st.mute_path().exists()
    ]
    if not have:
        return None
    (ref, first), *others = have
    a = np.load(first.mute_path())
    for s, st in others:
        b = np.load(st.mute_path())
        if a.shape != b.shape or not np.allclose(a, b, **_MUTE_TOL):
            raise ExtractError(
                f"shard {s}: mute/features.npy differs from shard {ref}'s although their "
                f"embedder options agree (other weights?); rerun shard {s}, then merge again"
            )
    return first.mute_path()


def _same(src: Path, dst: Path) -> bool:
    try:
        a, b = src.stat(), dst.stat()
    except FileNotFoundError:
        return False
    # a link is the same file; a copy (copy2 keeps the mtime) of an unchanged file, too
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino) or (a.st_size, a.st_mtime_ns) == (
        b.st_size,
        b.st_mtime_ns,
    )


def _place(src: Path, dst: Path) -> bool:
    """Put `src` at `dst` atomically: a hard link, or a copy where that fails; True if linked."""
    with atomic.atomic_path(dst) as tmp:
        tmp.unlink()
        try:
            os.link(src, tmp)
            return True
        except OSError:  # another filesystem, or one without hard links
            shutil.copy2(src, tmp)
            return False


@dataclass
class _Union:
    """Every shard's records, and (shard file, merged file, slice, kind) of each file to place."""

    sources: dict[str, SourceRecord] = field(default_factory=dict)
    slices: dict[str, SliceRecord] = field(default_factory=dict)
    done: dict[str, dict[str, str]] = field(default_factory=dict)  # stage -> {slice: sha}
    plan: list[tuple[Path, Path, str, str]] = field(default_factory=list)  # ..., kind


def _union(stores: dict[Shard, FeatureStore], main: FeatureStore) -> _Union:
    out = _Union(done={st: {} for st in next(iter(stores.values())).stages})
    sources, slices, done, plan = out.sources, out.slices, out.done, out.plan
    owner: dict[str, Shard] = {}
    for s, st in stores.items():
        for path, rec in st.sources.items():
            if path in sources:
                raise ExtractError(f"source {path} is in shard {owner[path]} and shard {s}")
            sources[path], owner[path] = rec, s
        for name, rec in st.slices.items():
            if name in slices:  # ingest.source_tag keeps local files apart; two URLs might not
                raise ExtractError(
                    f"slice {name} is in shard {owner[name]} and shard {s}: two sources share "
                    "a slice name; rename one of the files"
                )
            slices[name], owner[name] = rec, s
            kinds = ["sliced", "sliced16k"]
            for stage, srec in st.stages.items():
                if srec["done"].get(name) == rec.sha:
                    done[stage][name] = rec.sha
                    kinds += STAGE_DIRS[stage]
            for kind in kinds:
                src = st.path(kind, rec)
                if not src.exists():
                    raise ExtractError(
                        f"shard {s}: {src} is recorded but missing: rerun extract.py with "
                        f"shard={s} (it redoes only that), then merge again"
                    )
                plan.append((src, main.path(kind, rec), name, kind))
    return out


def _merge_locked(root: Path, stores: dict[Shard, FeatureStore]) -> ExtractResult:
    _check_alike(stores)
    mute = _mute(stores)
    try:
        main = FeatureStore(root)
    except ValueError as e:
        raise ExtractError(str(e)) from e
    main.clean_temp()
    merged = _union(stores, main)
    sources, slices, done, plan = merged.sources, merged.slices, merged.done, merged.plan
    old = dict(main.slices)
    changing = [p for p in plan if not _same(p[0], p[1])]
    mute_changing = mute is not None and not _same(mute, main.mute_path())
    # the old manifest must not vouch for a file replaced below, should the merge be killed
    vouched = False
    for _, _, name, kind in changing:
        stage = _STAGE_OF.get(kind)
        if stage is None and name in main.slices:  # new audio: nothing of the slice holds
            main.slices.pop(name)
            for st in main.stages.values():
                st.get("done", {}).pop(name, None)
            vouched = True
        elif stage is not None and main.stages.get(stage, {}).get("done", {}).pop(name, None):
            vouched = True
    if mute_changing and main.stages.get("features", {}).pop("mute", None):
        vouched = True
    if vouched:
        main.save()
    linked = sum(_place(src, dst) for src, dst, *_ in changing)
    if mute_changing:
        _place(mute, main.mute_path())

    first = next(iter(stores.values()))
    main.params = {k: v for k, v in first.params.items() if k != "shard"}
    main.sources, main.slices = sources, slices
    main.stages = {}
    for stage, rec in first.stages.items():
        main.stages[stage] = {"config": rec["config"], "hash": outcome_hash(rec["config"])}
        main.stages[stage]["done"] = done[stage]
        if stage == "features" and mute is not None:
            main.stages[stage]["mute"] = True
    main.save()
    gone = [rec for name, rec in old.items() if name not in slices]
    if gone:  # slices no shard has any more (inputs changed): said, as extract.py says it
        log.warning("merge: %d slices no shard holds were removed from the store", len(gone))
    for rec in gone:
        for kind in SLICE_KINDS:
            main.path(kind, rec).unlink(missing_ok=True)
    log.info(
        "merged %d shards: %d slices; %d files placed (%d linked, %d copied), %d kept",
        len(stores), len(slices), len(changing), linked, len(changing) - linked,
        len(plan) - len(changing),
    )  # fmt: skip
    audit = audit_mod.build_audit(main)
    audit_mod.save_audit(main, audit)
    return ExtractResult(main, audit, ingested=0, reused=len(sources), failures={})
