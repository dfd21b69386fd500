import numpy as np
import pytest

from rvc.data.store import FeatureStore, SliceRecord, SourceRecord, config_hash


def _slice(name: str, sha: str = "aa", spk: int = 0) -> SliceRecord:
    return SliceRecord(name, spk, "src", 0, 100, 100, 40, sha)


def _populated(tmp_path) -> FeatureStore:
    st = FeatureStore(tmp_path / "exp")
    src = SourceRecord("/x.wav", 0, "c" * 64, "p" * 16, "ok", slices=["a", "b"])
    st.put_source(src, [_slice("a"), _slice("b")])
    for r in st.slices.values():
        for kind in ("sliced", "sliced16k"):
            p = st.path(kind, r)
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(b"x")
    st.save()
    return st


def test_config_hash_is_order_independent_and_sensitive():
    assert config_hash({"a": 1, "b": 2}) == config_hash({"b": 2, "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_manifest_round_trip(tmp_path):
    st = _populated(tmp_path)
    again = FeatureStore(st.root)
    assert again.slices == st.slices
    assert again.sources["/x.wav"] == st.sources["/x.wav"]
    assert again.source_is_current("/x.wav", "c" * 64, "p" * 16)
    assert not again.source_is_current("/x.wav", "d" * 64, "p" * 16)
    st.path("sliced16k", st.slices["a"]).unlink()  # a lost file makes the source stale
    assert not FeatureStore(st.root).source_is_current("/x.wav", "c" * 64, "p" * 16)


def test_stage_todo_tracks_config_and_slice_content(tmp_path):
    st = _populated(tmp_path)
    cfg = {"_target_": "x", "hop": 160}
    todo = st.stage_todo("f0", cfg)
    assert {r.name for r in todo} == {"a", "b"}
    for r in todo:
        for kind in ("f0", "f0c"):
            p = st.path(kind, r)
            p.parent.mkdir(parents=True, exist_ok=True)
            np.save(p, np.zeros(3))
        st.mark_done("f0", r)
    assert st.stage_todo("f0", cfg) == [] and st.stage_complete("f0")
    st.slices["b"].sha = "changed"  # new audio for b → only b is redone
    assert [r.name for r in st.stage_todo("f0", cfg)] == ["b"]
    # a new config redoes everything
    assert len(st.stage_todo("f0", {"_target_": "x", "hop": 80})) == 2


def test_runtime_knobs_do_not_make_a_stage_stale(tmp_path):
    st = _populated(tmp_path)
    cfg = {"_target_": "x", "threshold": 0.1, "batch_size": 8}
    for r in st.stage_todo("f0", cfg):
        for kind in ("f0", "f0c"):
            st.path(kind, r).parent.mkdir(parents=True, exist_ok=True)
            np.save(st.path(kind, r), np.zeros(3))
        st.mark_done("f0", r)
    faster = dict(cfg, batch_size=64, device="cuda:1", num_workers=8)
    assert st.stage_todo("f0", faster) == []
    assert st.stages["f0"]["config"]["batch_size"] == 64  # the manifest says what ran last
    assert len(st.stage_todo("f0", dict(cfg, threshold=0.2))) == 2


def test_put_source_replaces_and_deletes_old_slices(tmp_path):
    st = _populated(tmp_path)
    old_file = st.path("sliced", st.slices["a"])
    new = SourceRecord("/x.wav", 0, "c" * 64, "q" * 16, "ok", slices=["c"])
    st.put_source(new, [_slice("c")])
    assert set(st.slices) == {"c"} and not old_file.exists()
    st.drop_source("/x.wav")
    assert not st.sources and not st.slices


def test_a_renumbered_speaker_leaves_no_files_in_its_old_folder(tmp_path):
    st = _populated(tmp_path)
    st.stages = {"f0": {"config": {}, "hash": "", "done": {"a": "aa", "b": "aa"}}}
    old = st.path("sliced", st.slices["a"])
    again = SourceRecord("/x.wav", 3, "c" * 64, "p" * 16, "ok", slices=["a", "b"])
    st.put_source(again, [_slice("a", spk=3), _slice("b", spk=3)])  # same names, speaker 3
    assert not old.exists() and st.slices["a"].speaker == 3
    assert st.stages["f0"]["done"] == {}  # their F0 is in the old folder: redone


def test_corrupt_manifest_is_a_clear_error(tmp_path):
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="manifest"):
        FeatureStore(tmp_path)
