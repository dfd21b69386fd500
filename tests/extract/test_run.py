"""extract.py end to end on small synthetic data: slices, F0, features, audit, idempotence."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from rvc.data.store import FeatureStore
from rvc.extract.run import ExtractError, run
from tests.conftest import compose, voiced_clip, write
from tests.reliability.files import assert_every_file_loads

ROOT = Path(__file__).resolve().parents[2]
FAST = ["f0=pm", "embedder=spectral", "device.num_workers=1"]


def _cfg(tmp_path: Path, inputs, *extra: str):
    ins = inputs if isinstance(inputs, str) else "[" + ",".join(map(str, inputs)) + "]"
    return compose("extract", ["name=t", f"paths.root={tmp_path}", f"inputs={ins}", *FAST, *extra])


def _mtimes(store: FeatureStore, kind: str) -> dict[str, int]:
    return {n: store.path(kind, r).stat().st_mtime_ns for n, r in store.slices.items()}


def test_full_run_fills_the_store(tmp_path, voice_dir):
    res = run(_cfg(tmp_path, [voice_dir]))
    st = res.store
    assert res.ingested == 3 and len(st.slices) >= 3
    for rec in st.slices.values():
        y, sr = sf.read(st.path("sliced", rec))
        y16, sr16 = sf.read(st.path("sliced16k", rec))
        assert sr == 40000 and sr16 == 16000
        assert len(y) <= 3.0 * sr + 1  # chunk_len
        f0 = np.load(st.path("f0", rec))
        assert len(f0) == len(y16) // 160
        feats = np.load(st.path("features", rec))
        assert feats.shape[1] == 768 and feats.dtype == np.float16
        assert abs(len(feats) * 2 - len(f0)) <= 4  # 20 ms vs 10 ms frames
    # pitch really came back: the clips are at 120/160/210 Hz (±5 % vibrato)
    assert 100 < res.audit["f0_hz"]["p5"] and res.audit["f0_hz"]["p95"] < 240
    assert st.stages["features"]["config"]["dim"] == 768
    audit = json.loads((st.root / "audit.json").read_text())
    assert audit["slices"] == len(st.slices) and (st.root / "audit.png").exists()


def test_rerun_is_idempotent_and_stages_redo_only_what_changed(tmp_path, voice_dir):
    first = run(_cfg(tmp_path, [voice_dir]))
    sliced, f0, feats = (_mtimes(first.store, k) for k in ("sliced", "f0", "features"))
    again = run(_cfg(tmp_path, [voice_dir]))
    assert again.ingested == 0 and again.reused == 3
    assert _mtimes(again.store, "sliced") == sliced and _mtimes(again.store, "f0") == f0

    other_f0 = run(_cfg(tmp_path, [voice_dir], "f0=harvest"))  # F0 only
    assert _mtimes(other_f0.store, "f0") != f0
    assert _mtimes(other_f0.store, "features") == feats
    assert _mtimes(other_f0.store, "sliced") == sliced

    resliced = run(_cfg(tmp_path, [voice_dir], "f0=harvest", "slicing.chunk_len=2.0"))
    assert resliced.ingested == 3
    assert max(r.n_samples for r in resliced.store.slices.values()) <= 2.0 * 40000 + 1


def test_speed_knobs_reuse_a_stage_and_result_knobs_redo_it(tmp_path, voice_dir):
    first = run(_cfg(tmp_path, [voice_dir], "f0=fcpe", "f0.batch_size=16"))
    f0, feats = _mtimes(first.store, "f0"), _mtimes(first.store, "features")
    faster = run(_cfg(tmp_path, [voice_dir], "f0=fcpe", "f0.batch_size=2", "device.batch_size=1"))
    assert not any(faster.failures.values())
    assert _mtimes(faster.store, "f0") == f0 and _mtimes(faster.store, "features") == feats
    stricter = run(_cfg(tmp_path, [voice_dir], "f0=fcpe", "f0.threshold=0.05"))
    assert _mtimes(stricter.store, "f0") != f0  # every slice redone
    assert all(
        stricter.store.path("f0", r).stat().st_mtime_ns != f0[n]
        for n, r in stricter.store.slices.items()
    )
    assert _mtimes(stricter.store, "features") == feats


def test_removed_input_leaves_the_store(tmp_path, voice_dir):
    run(_cfg(tmp_path, [voice_dir]))
    res = run(_cfg(tmp_path, [voice_dir / "clip0.wav"]))
    assert {Path(p).name for p in res.store.sources} == {"clip0.wav"}
    names = {p.stem for p in (res.store.root / "sliced").rglob("*.wav")}
    assert names == set(res.store.slices)


def test_multi_speaker_folders_and_trim(tmp_path):
    d = tmp_path / "multi"
    write(d / "0" / "a.wav", voiced_clip(40000, 110.0), 40000)
    write(d / "1" / "b.wav", voiced_clip(40000, 220.0, seed=3), 40000)
    trimmed = f"{{path:{d / '1' / 'b.wav'},start:0.2,end:2.5}}"
    res = run(_cfg(tmp_path, f"[{d / '0'},{trimmed}]", "stages=[slice]"))
    spk = {Path(s.path).name: s.speaker for s in res.store.sources.values()}
    assert spk == {"a.wav": 0, "b.wav": 1}
    b = next(s for s in res.store.sources.values() if s.path.endswith("b.wav"))
    assert abs(b.duration - 2.3) < 0.01
    assert {r.speaker for r in res.store.slices.values()} == {0, 1}


def test_bad_input_corpus_is_reported_and_the_rest_proceeds(tmp_path):
    d = tmp_path / "mixed"
    write(d / "good.wav", voiced_clip(40000, 150.0), 40000)
    (d / "empty.wav").write_bytes(b"")
    (d / "notes.wav").write_text("this is not audio")
    (d / "corrupt.flac").write_bytes(b"fLaC" + os.urandom(500))
    write(d / "silent.wav", np.zeros(40000 * 2, np.float32), 40000)
    clipped = np.clip(voiced_clip(40000, 150.0) * 20, -1, 1)
    write(d / "clipped.wav", clipped, 40000)
    write(d / "one.wav", np.zeros(1, np.float32), 16000)
    write(d / "nan.wav", np.full(16000, np.nan, np.float32), 16000, subtype="FLOAT")
    write(d / "low8k.wav", voiced_clip(8000, 140.0, seed=5), 8000)
    six = np.tile(voiced_clip(44100, 180.0, seed=6)[:, None], (1, 6)) * 0.3
    write(d / "six.wav", six, 44100)
    res = run(_cfg(tmp_path, [d], "stages=[slice]"))
    by_name = {Path(s.path).name: s for s in res.store.sources.values()}
    assert {n for n, s in by_name.items() if s.status == "ok"} == {
        "good.wav",
        "low8k.wav",
        "six.wav",
    }
    for name in ("empty.wav", "notes.wav", "corrupt.flac", "one.wav", "nan.wav"):
        assert by_name[name].status in ("failed", "skipped") and by_name[name].reason, name
    assert "silent" in by_name["silent.wav"].reason
    assert "clipped" in by_name["clipped.wav"].reason
    assert "low sample rate" in by_name["low8k.wav"].reason
    dropped = {Path(x["file"]).name for x in res.audit["dropped"]}
    assert dropped == set(by_name) - {"good.wav", "low8k.wav", "six.wav"}


def test_nothing_usable_is_one_clear_error(tmp_path):
    d = tmp_path / "junk"
    (d).mkdir()
    (d / "a.wav").write_text("nope")
    write(d / "b.wav", np.zeros(32000, np.float32), 16000)
    with pytest.raises(ExtractError, match="nothing usable"):
        run(_cfg(tmp_path, [d], "stages=[slice]"))
    with pytest.raises(ExtractError, match="no such file"):
        run(_cfg(tmp_path, [tmp_path / "missing"], "stages=[slice]"))
    # through the entry point: exit 1 and a message, no traceback
    p = subprocess.run(
        [
            sys.executable,
            str(ROOT / "extract.py"),
            "name=t",
            f"paths.root={tmp_path}",
            f"inputs=[{d}]",
            "stages=[slice]",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert p.returncode == 1 and "nothing usable" in p.stderr and "Traceback" not in p.stderr


def test_sharded_devices_give_the_same_features(tmp_path, voice_dir):
    one = run(_cfg(tmp_path / "a", [voice_dir]))
    two = run(_cfg(tmp_path / "b", [voice_dir], "device.devices=2"))
    assert set(one.store.slices) == set(two.store.slices)
    for n, rec in one.store.slices.items():
        a = np.load(one.store.path("features", rec))
        b = np.load(two.store.path("features", two.store.slices[n]))
        # other batch-mates, other padding: equal up to fp16 rounding
        np.testing.assert_allclose(a, b, atol=5e-3, rtol=1e-2)
        assert two.store.stages["f0"]["done"][n] == rec.sha


def test_run_killed_in_a_model_stage_resumes_to_the_uninterrupted_result(tmp_path):
    d = tmp_path / "many"
    for i in range(8):
        clip = voiced_clip(40000, 100.0 + 10 * i, segments=(1.6,), seed=i)
        write(d / f"c{i:02d}.wav", clip, 40000)
    # harvest is slow and batch 1 saves every slice: a wide window inside the F0 stage
    slow = ["f0=harvest", "embedder=spectral", "device.num_workers=1", "device.batch_size=1"]
    killed_root = tmp_path / "killed"
    args = [sys.executable, str(ROOT / "extract.py"), "name=t", f"paths.root={killed_root}"]
    proc = subprocess.Popen(
        [*args, f"inputs=[{d}]", *slow],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    manifest = killed_root / "experiments" / "t" / "manifest.json"
    done_before: dict[str, str] = {}
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        try:
            stages = json.loads(manifest.read_text()).get("stages", {})
        except (OSError, json.JSONDecodeError):
            stages = {}
        if len(stages.get("f0", {}).get("done", {})) >= 2:
            break
        time.sleep(0.02)
    proc.kill()
    assert proc.wait() == -9, "the run finished before it could be killed mid-stage"
    whole_files = assert_every_file_loads(killed_root / "experiments" / "t")  # none truncated
    assert whole_files[".npy"] >= 2 and whole_files[".wav"] >= 16 and whole_files[".json"] >= 1
    store = FeatureStore(killed_root / "experiments" / "t")
    done_before = dict(store.stages["f0"]["done"])
    n_slices = len(store.slices)
    assert 2 <= len(done_before) < n_slices and "features" not in store.stages
    mtimes = {n: store.path("f0", store.slices[n]).stat().st_mtime_ns for n in done_before}

    resumed = run(
        compose("extract", ["name=t", f"paths.root={killed_root}", f"inputs=[{d}]", *slow])
    )
    whole = run(
        compose("extract", ["name=t", f"paths.root={tmp_path / 'whole'}", f"inputs=[{d}]", *slow])
    )
    assert resumed.reused == 8 and resumed.ingested == 0  # slicing was not redone
    for n in done_before:  # finished F0 was kept, not recomputed
        assert resumed.store.path("f0", resumed.store.slices[n]).stat().st_mtime_ns == mtimes[n]
    assert not list(resumed.store.root.rglob(".*.npy")) and not list(
        resumed.store.root.rglob(".*.wav")
    )
    assert set(resumed.store.slices) == set(whole.store.slices)
    for n, rec in whole.store.slices.items():
        other = resumed.store.slices[n]
        assert other.sha == rec.sha
        for kind in ("f0", "f0c", "features"):
            np.testing.assert_array_equal(
                np.load(resumed.store.path(kind, other)), np.load(whole.store.path(kind, rec))
            )
    assert resumed.store.stage_complete("f0") and resumed.store.stage_complete("features")
    assert assert_every_file_loads(resumed.store.root)[".npy"] >= 3 * 8


@pytest.mark.parametrize("f0", ["crepe_tiny", "fcpe", "harvest"])
def test_offline_f0_methods_fill_the_store(tmp_path, f0):
    d = tmp_path / "v"
    write(d / "a.wav", voiced_clip(40000, 180.0, segments=(1.6,)), 40000)
    res = run(_cfg(tmp_path, [d], f"f0={f0}"))
    voiced = np.concatenate([np.load(res.store.path("f0", r)) for r in res.store.slices.values()])
    voiced = voiced[voiced > 0]
    assert len(voiced) > 50
    cents = 1200 * np.abs(np.log2(np.median(voiced) / 180.0))
    assert cents < 50  # the clip wobbles ±5 % around 180 Hz


def test_usable_minutes_count_voice_not_pauses(tmp_path):
    d = tmp_path / "p"
    # 2 × 2.0 s of voice, 1.5 s pauses: the slicer keeps ≤ 0.5 s of each pause in slices
    write(d / "a.wav", voiced_clip(40000, 150.0, segments=(2.0, 2.0), pause=1.5), 40000)
    res = run(_cfg(tmp_path, [d], "stages=[slice]"))
    (src,) = res.store.ok_sources()
    assert 3.7 < src.usable < 4.2, src.usable
    assert src.duration > 5.0
