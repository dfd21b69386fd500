"""Sharded extraction: `shard=i/n` stores, `shard=merge`, a killed shard's rerun, the errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from rvc.data import audit
from rvc.data.datamodule import open_store
from rvc.data.store import FeatureStore, hold
from rvc.extract import features, shards
from rvc.extract.run import ExtractError, run
from rvc.extract.shards import Shard, parse
from rvc.utils.atomic import write_json
from tests.conftest import compose, voiced_clip, write

ROOT = Path(__file__).resolve().parents[2]
FAST = ["f0=pm", "embedder=spectral", "device.num_workers=1"]
KINDS = ("f0", "f0c", "features")


@pytest.fixture(autouse=True)
def json_audit(request, monkeypatch):
    """audit.json without the plots, which cost most of a run this small; a test that asks for
    `plots` draws them."""
    if "plots" not in request.fixturenames:
        monkeypatch.setattr(
            audit, "save_audit", lambda st, a: write_json(st.root / "audit.json", a)
        )


@pytest.fixture
def plots() -> None:
    """The real audit, plots too (see json_audit)."""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Four short clips, two in each shard of two (the shard hashes the absolute path)."""
    d = tmp_path_factory.mktemp("corpus")
    taken = {0: 0, 1: 0}
    i = 0
    while min(taken.values()) < 2:
        path = (d / str(i % 2) / f"c{i:02d}.wav").resolve()  # speakers 0 and 1
        owner = 0 if Shard(0, 2).owns(str(path)) else 1
        if taken[owner] < 2:
            clip = voiced_clip(40000, 110.0 + 15 * i, segments=(1.4,), seed=i)
            write(path, clip, 40000)
            taken[owner] += 1
        i += 1
    return d


@pytest.fixture(scope="module")
def whole(corpus, tmp_path_factory) -> FeatureStore:
    """One unsharded run over the corpus: what the merged shards must equal."""
    return run(_cfg(tmp_path_factory.mktemp("whole"), [corpus])).store


def _cfg(root: Path, inputs: list[Path], *extra: str):
    ins = "[" + ",".join(map(str, inputs)) + "]"
    return compose("extract", ["name=t", f"paths.root={root}", f"inputs={ins}", *FAST, *extra])


def _exp(root: Path) -> Path:
    return root / "experiments" / "t"


def _mtimes(store: FeatureStore, kind: str) -> dict[str, int]:
    return {n: store.path(kind, r).stat().st_mtime_ns for n, r in store.slices.items()}


def assert_same_store(got: FeatureStore, want: FeatureStore) -> None:
    """Same slices and speakers, every array equal, both stages complete, same silence."""
    assert set(got.slices) == set(want.slices)
    for name, rec in want.slices.items():
        other = got.slices[name]
        assert (other.sha, other.speaker) == (rec.sha, rec.speaker)
        for kind in ("sliced", "sliced16k"):
            np.testing.assert_array_equal(
                sf.read(got.path(kind, other))[0], sf.read(want.path(kind, rec))[0]
            )
        for kind in KINDS:
            np.testing.assert_array_equal(
                np.load(got.path(kind, other)), np.load(want.path(kind, rec))
            )
    assert got.stage_complete("f0") and got.stage_complete("features")
    assert got.params == want.params
    np.testing.assert_array_equal(got.load_mute_features(), want.load_mute_features())


def _two_shards(root: Path, inputs: list[Path], *extra: str) -> list[FeatureStore]:
    return [run(_cfg(root, inputs, f"shard={s}", *extra)).store for s in ("0/2", "1/2")]


def test_two_shards_then_merge_equal_one_run(tmp_path, corpus, whole, plots):
    # an older unsharded run in the experiment folder, over one file more: the merge replaces it
    extra = tmp_path / "extra"
    write(extra / "old.wav", voiced_clip(40000, 300.0, segments=(1.4,), seed=9), 40000)
    before = run(_cfg(tmp_path, [corpus, extra])).store
    gone = [before.path("sliced", r) for r in before.slices.values() if "old" in r.name]
    assert gone

    parts = _two_shards(tmp_path, [corpus])
    assert [p.root for p in parts] == [_exp(tmp_path) / "shards" / d for d in ("0of2", "1of2")]
    assert all(len(p.slices) >= 2 for p in parts) and not set(parts[0].slices) & set(
        parts[1].slices
    )
    merged = run(_cfg(tmp_path, [corpus], "shard=merge"))
    assert merged.store.root == _exp(tmp_path)
    assert_same_store(open_store(_exp(tmp_path), 40000), whole)  # what training opens
    assert not any(p.exists() for p in gone)
    audit = json.loads((_exp(tmp_path) / "audit.json").read_text())
    assert audit["slices"] == len(whole.slices) and (_exp(tmp_path) / "audit.png").exists()
    assert audit["speakers"] == [0, 1] and not audit["f0_missing"] and not audit["features_missing"]
    rec = next(iter(parts[0].slices.values()))  # hard links: no second copy of the corpus
    assert parts[0].path("features", rec).samefile(merged.store.path("features", rec))

    # merging again changes nothing
    manifest = (_exp(tmp_path) / "manifest.json").read_text()
    mtimes = {k: _mtimes(merged.store, k) for k in ("sliced", *KINDS)}
    again = run(_cfg(tmp_path, [corpus], "shard=merge")).store
    assert (_exp(tmp_path) / "manifest.json").read_text() == manifest
    assert {k: _mtimes(again, k) for k in ("sliced", *KINDS)} == mtimes


def test_an_added_input_joins_one_shard_and_moves_no_other(tmp_path, corpus):
    first = _two_shards(tmp_path, [corpus])
    run(_cfg(tmp_path, [corpus], "shard=merge"))
    mtimes = [_mtimes(s, "features") for s in first]
    extra = tmp_path / "extra"
    new = write(extra / "new.wav", voiced_clip(40000, 250.0, segments=(1.4,), seed=7), 40000)
    owner = 0 if Shard(0, 2).owns(str(new.resolve())) else 1
    grown = run(_cfg(tmp_path, [corpus, extra], f"shard={owner}/2"))
    assert grown.ingested == 1 and grown.reused == 2
    # the other shard has not seen the new inputs yet: merging now would lose the new file
    other = f"{1 - owner}/2"
    files = "5 and 4" if owner == 0 else "4 and 5"  # shard 0/2's count first
    listed = rf"shards 0/2 and 1/2 listed other inputs at params\.shard\.inputs \({files} files\)"
    with pytest.raises(ExtractError, match=listed):
        run(_cfg(tmp_path, [corpus], "shard=merge"))
    rerun = run(_cfg(tmp_path, [corpus, extra], f"shard={other}"))
    assert rerun.ingested == 0 and rerun.reused == 2  # nothing moved into or out of it
    assert _mtimes(rerun.store, "features") == mtimes[1 - owner]
    merged = run(_cfg(tmp_path, [corpus], "shard=merge")).store
    new_names = set(merged.slices) - set(first[0].slices) - set(first[1].slices)
    assert new_names and all(n.startswith("new_") for n in new_names)
    assert merged.stage_complete("f0") and merged.stage_complete("features")


@pytest.mark.slow  # the interrupted shard below covers the same ground, in one stage
def test_a_killed_shard_reruns_only_its_unfinished_slices(tmp_path, corpus, whole, monkeypatch):
    shard0, _ = _two_shards(tmp_path, [corpus])
    # what kill -9 in the model stages leaves: done records missing, the shard unfinished
    lost_f0, lost_feats = sorted(shard0.slices)[:2]
    store = FeatureStore(shard0.root)
    del store.stages["f0"]["done"][lost_f0]
    del store.stages["features"]["done"][lost_feats]
    store.params["shard"]["finished"] = False
    store.save()
    with pytest.raises(ExtractError, match=r"shard 0/2 did not finish .* rerun extract\.py"):
        run(_cfg(tmp_path, [corpus], "shard=merge"))

    computed: dict[str, list[str]] = {"f0": [], "features": []}
    for stage in computed:
        real = features.BATCH_FNS[stage]

        def spy(model, st, recs, audios=None, real=real, stage=stage):
            computed[stage] += [r.name for r in recs]
            return real(model, st, recs, audios)

        monkeypatch.setitem(features.BATCH_FNS, stage, spy)
    kept = {k: _mtimes(store, k) for k in KINDS}
    again = run(_cfg(tmp_path, [corpus], "shard=0/2"))
    assert again.ingested == 0 and computed == {"f0": [lost_f0], "features": [lost_feats]}
    for kind, lost in (("f0", lost_f0), ("f0c", lost_f0), ("features", lost_feats)):
        now = _mtimes(again.store, kind)
        assert {n: t for n, t in now.items() if n != lost} == {
            n: t for n, t in kept[kind].items() if n != lost
        }
    assert_same_store(run(_cfg(tmp_path, [corpus], "shard=merge")).store, whole)


def test_a_shard_interrupted_in_a_stage_resumes_there(tmp_path, corpus, whole, monkeypatch):
    real = features.BATCH_FNS["f0"]
    computed: list[str] = []

    def count(model, st, recs, audios=None):
        computed.extend(r.name for r in recs)
        return real(model, st, recs, audios)

    def dies(model, st, recs, audios=None):
        if computed:  # the second batch: as Ctrl-C, or a kill, in the middle of the stage
            raise KeyboardInterrupt
        return count(model, st, recs, audios)

    run(_cfg(tmp_path, [corpus], "shard=1/2"))
    monkeypatch.setitem(features.BATCH_FNS, "f0", dies)
    with pytest.raises(KeyboardInterrupt):
        run(_cfg(tmp_path, [corpus], "shard=0/2", "device.batch_size=1"))
    store = FeatureStore(_exp(tmp_path) / "shards" / "0of2")
    assert set(store.stages["f0"]["done"]) == set(computed) and len(store.slices) > 1
    assert not store.params["shard"]["finished"] and "features" not in store.stages
    with pytest.raises(ExtractError, match=r"shard 0/2 did not finish .* rerun extract\.py"):
        run(_cfg(tmp_path, [corpus], "shard=merge"))
    first, mtime = computed[0], store.path("f0", store.slices[computed[0]]).stat().st_mtime_ns

    computed.clear()
    monkeypatch.setitem(features.BATCH_FNS, "f0", count)
    again = run(_cfg(tmp_path, [corpus], "shard=0/2"))
    assert again.ingested == 0 and set(computed) == set(store.slices) - {first}
    assert again.store.path("f0", again.store.slices[first]).stat().st_mtime_ns == mtime
    assert_same_store(run(_cfg(tmp_path, [corpus], "shard=merge")).store, whole)


def test_a_shard_without_sources_finishes_empty_and_merges(tmp_path, corpus, whole):
    clip = next(p for p in sorted(corpus.rglob("*.wav")) if Shard(1, 2).owns(str(p)))
    empty, full = _two_shards(tmp_path, [clip])  # more shards than files: some get none
    assert not empty.slices and empty.params["shard"]["finished"] and full.slices
    merged = run(_cfg(tmp_path, [clip], "shard=merge")).store
    assert set(merged.slices) == set(full.slices) and merged.stage_complete("features")
    assert merged.load_mute_features().shape == whole.load_mute_features().shape


def test_merge_copies_where_links_fail_and_a_killed_merge_vouches_for_no_new_file(
    tmp_path, corpus, monkeypatch
):
    def no_links(src, dst):
        raise OSError(18, "Invalid cross-device link")

    with monkeypatch.context() as m:
        m.setattr(shards.os, "link", no_links)
        parts = _two_shards(tmp_path, [corpus], "stages=[slice,f0]")
        merged = run(_cfg(tmp_path, [corpus], "shard=merge")).store
        inodes = {n: merged.path("f0", r).stat().st_ino for n, r in merged.slices.items()}
        for n, r in merged.slices.items():
            shard_file = next(p for p in parts if n in p.slices).path("f0", r)
            assert not shard_file.samefile(merged.path("f0", r))
            assert shard_file.read_bytes() == merged.path("f0", r).read_bytes()
        again = run(_cfg(tmp_path, [corpus], "shard=merge")).store  # copies kept, not redone
        assert {n: again.path("f0", r).stat().st_ino for n, r in again.slices.items()} == inodes

    old = {n: merged.path("f0", r).read_bytes() for n, r in merged.slices.items()}
    _two_shards(tmp_path, [corpus], "stages=[slice,f0]", "f0.f0_max=100")
    real, placed = shards._place, []

    def dies(src, dst):
        if len(placed) == 3:
            raise KeyboardInterrupt  # a kill in the middle of placing the new F0 files
        placed.append(dst)
        return real(src, dst)

    monkeypatch.setattr(shards, "_place", dies)
    with pytest.raises(KeyboardInterrupt):
        run(_cfg(tmp_path, [corpus], "shard=merge"))
    killed = FeatureStore(_exp(tmp_path))
    assert set(killed.slices) == set(merged.slices) and not killed.stages["f0"]["done"]
    assert any(killed.path("f0", r).read_bytes() != old[n] for n, r in killed.slices.items())
    monkeypatch.setattr(shards, "_place", real)
    done = run(_cfg(tmp_path, [corpus], "shard=merge")).store
    assert done.stage_complete("f0") and done.stages["f0"]["config"]["f0_max"] == 100


@pytest.mark.parametrize("value", ["2/2", "0/0", "-1/2", "1", "0/2/4", "a/b", "0of2", "half"])
def test_bad_shard_values_are_one_line_errors(tmp_path, corpus, value):
    with pytest.raises(ExtractError, match=r"^shard=.*: expected i/n with 0 <= i < n") as e:
        run(_cfg(tmp_path, [corpus], f"shard={value}"))
    assert "\n" not in str(e.value) and not (tmp_path / "experiments").exists()


def test_merge_names_missing_locked_and_mismatched_shards(tmp_path, corpus):
    def merge_error(match: str) -> None:
        with pytest.raises(ExtractError, match=match) as e:
            run(_cfg(tmp_path, [corpus], "shard=merge"))
        assert "\n" not in str(e.value)

    merge_error(r"no shards to merge")
    slice_only = ["stages=[slice]"]
    run(_cfg(tmp_path, [corpus], "shard=1/2", *slice_only))
    merge_error(r"missing shards 0/2 in .*shards: run extract\.py with shard=0/2")
    run(_cfg(tmp_path, [corpus], "shard=0/2", *slice_only, "slicing.chunk_len=2.0"))
    merge_error(r"shard 1/2 differs from shard 0/2 at params\.slice\.chunk_len \(3\.0, not 2\.0\)")
    run(_cfg(tmp_path, [corpus], "shard=0/2", "stages=[slice,f0]", "f0.voicing_threshold=0.5"))
    merge_error(r"shard 1/2 differs from shard 0/2 at stages\.f0 \(absent, not hash \w+\)")
    run(_cfg(tmp_path, [corpus], "shard=1/2", "stages=[slice,f0]"))
    merge_error(
        r"shard 1/2 differs from shard 0/2 at stages\.f0\.voicing_threshold \(0\.6, not 0\.5\)"
    )
    parts = _two_shards(tmp_path, [corpus])  # now alike
    with hold(parts[1].root):
        merge_error(r"shard 1/2 is still running: .*another run is writing this store")
    mute = parts[1].mute_path()
    np.save(mute, np.load(mute) + 1)
    merge_error(r"shard 1/2: mute/features\.npy differs from shard 0/2's")
    (_exp(tmp_path) / "shards" / "2of3").mkdir()
    merge_error(r"shards of 2 and 3 jobs; merge one sharding")


def test_a_shard_sweep_parses_and_composes_for_slurm():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    sweep = OverridesParser.create().parse_override("shard=0/8,1/8,7/8")
    values = list(sweep.sweep_string_iterator())  # what each job of `-m` gets
    assert values == ["0/8", "1/8", "7/8"] and parse(values[2]) == Shard(7, 8)
    over = ["name=x", "inputs=[a.wav]", "shard=7/8", "hydra/launcher=slurm"]
    cfg = compose("extract", [*over, "hydra.launcher.gpus_per_node=1"], return_hydra_config=True)
    assert cfg.shard == "7/8" and cfg.hydra.launcher.tasks_per_node == 1  # one writer a shard


@pytest.mark.slow
def test_multirun_sweep_of_shards_then_merge_through_the_entry_point(tmp_path, corpus, whole):
    # "0/2,1/2" is Hydra's sweep of two values; each "i/n" parses as a string
    args = [sys.executable, str(ROOT / "extract.py"), "name=t", f"paths.root={tmp_path}"]
    sweep = [*args[:2], "-m", *args[2:], f"inputs=[{corpus}]", "shard=0/2,1/2", *FAST]
    for cmd in (sweep, [*args, "shard=merge"]):
        p = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
        assert p.returncode == 0, p.stderr[-2000:]
    assert {d.name for d in (_exp(tmp_path) / "shards").iterdir()} == {"0of2", "1of2"}
    assert_same_store(FeatureStore(_exp(tmp_path)), whole)
