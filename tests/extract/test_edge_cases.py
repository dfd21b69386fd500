"""Edge cases: options validated up front, odd file names, speakers, locks, failing models."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from rvc.audio import process
from rvc.data.audit import print_audit
from rvc.data.store import FeatureStore
from rvc.extract.run import ExtractError, run
from rvc.f0.dsp import PMEstimator
from tests.conftest import compose, voiced_clip, write


def _cfg(tmp_path, inputs: str, *extra: str):
    return compose(
        "extract",
        ["name=r", f"paths.root={tmp_path}", f"inputs={inputs}", "f0=pm", "embedder=spectral",
         "device.num_workers=1", *extra],
    )  # fmt: skip


def test_f0_only_run_keeps_the_stored_slicing_options(tmp_path, voice_dir):
    run(_cfg(tmp_path, f"[{voice_dir}]", "model=48k", "slicing.split=simple"))
    res = run(_cfg(tmp_path, "[]", "stages=[f0]", "f0=harvest"))
    assert res.store.params["sample_rate"] == 48000
    assert res.store.params["slice"]["split"] == "simple"


@pytest.mark.parametrize(
    "inputs,extra,match",
    [("[{path:X,start:5,end:2}]", [], "start < end"),
     ("[{path:X,start:-1}]", [], "start < end"),
     ("[X]", ["slicing.overlap=3"], "overlap"),
     ("[X]", ["device=gpu"], "CUDA")],
)  # fmt: skip
def test_bad_options_are_clear_errors_before_any_work(tmp_path, voice_dir, inputs, extra, match):
    if extra == ["device=gpu"]:
        pytest.importorskip("torch")
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")
    with pytest.raises(ExtractError, match=match):
        run(_cfg(tmp_path, inputs.replace("X", str(voice_dir / "clip0.wav")), *extra))
    assert not (tmp_path / "experiments" / "r" / "sliced").exists()


def test_markup_like_file_names_print_as_they_are(tmp_path, capsys):
    d = tmp_path / "odd"
    write(d / "take[-x].wav", voiced_clip(40000, 150.0), 40000)
    write(d / "quiet [bold]x[/bold].wav", np.zeros(40000, np.float32), 40000)
    res = run(_cfg(tmp_path, f"[{d}]", "stages=[slice]"))
    print_audit(res.audit)
    out = capsys.readouterr().out
    assert "quiet [bold]x[/bold].wav" in " ".join(out.split())  # rich may wrap the line


def test_speaker_folders(tmp_path):
    d = tmp_path / "spk"
    clip = voiced_clip(40000, 150.0)
    write(d / "2024" / "a.wav", clip, 40000)  # a year, not a speaker
    write(d / "1" / "session" / "b.wav", clip, 40000)  # nested under speaker 1
    write(d / "3" / "c.wav", clip, 40000)  # the same bytes as a.wav/b.wav
    res = run(_cfg(tmp_path, f"[{d}]", "stages=[slice]"))
    spk = {s.path.rsplit("/", 1)[-1]: s.speaker for s in res.store.sources.values()}
    assert spk == {"a.wav": 0, "b.wav": 1, "c.wav": 3}
    # identical content in three places still gives three sets of slices
    assert len({r.source for r in res.store.slices.values()}) == 3
    assert {r.speaker for r in res.store.slices.values()} == {0, 1, 3}


def test_max_speakers_lifts_the_109_cap_and_renumbers_reused_sources(tmp_path):
    """A base model's corpus: folder 150 is speaker 150 with `max_speakers` raised; a re-run with
    the new cap re-ingests a source whose id changed (the slicing parameters did not)."""
    d = tmp_path / "corpus"
    write(d / "0" / "a.wav", voiced_clip(40000, 120.0), 40000)
    write(d / "150" / "b.wav", voiced_clip(40000, 200.0, seed=1), 40000)
    res = run(_cfg(tmp_path, f"[{d}]", "stages=[slice]"))
    assert {s.speaker for s in res.store.sources.values()} == {0}  # 109: the voice default
    res = run(_cfg(tmp_path, f"[{d}]", "stages=[slice]", "max_speakers=1000"))
    assert res.ingested == 1 and res.reused == 1
    assert {r.speaker for r in res.store.slices.values()} == {0, 150}


def test_an_unexpected_error_fails_one_file_not_the_run(tmp_path, voice_dir, monkeypatch):
    real, calls = process.highpass, []

    def flaky(audio, sr, cutoff=48.0):
        calls.append(1)
        if len(calls) == 1:  # the first file only
            raise MemoryError("pretend")
        return real(audio, sr, cutoff=cutoff)

    monkeypatch.setattr(process, "highpass", flaky)
    res = run(_cfg(tmp_path, f"[{voice_dir}]", "stages=[slice]"))
    failed = [s for s in res.store.sources.values() if s.status == "failed"]
    assert len(failed) == 1 and "MemoryError" in failed[0].reason
    assert len(res.store.ok_sources()) == 2


class RaisesOnShortest(PMEstimator):
    """PM that raises whenever a batch contains the shortest slice (a model crash)."""

    shortest = None

    def compute_batch(self, audios):
        if any(len(a) == self.shortest for a in audios):
            raise RuntimeError("model crashed")
        return super().compute_batch(audios)


def test_a_crashing_batch_fails_only_its_bad_slice(tmp_path, voice_dir):
    first = run(_cfg(tmp_path, f"[{voice_dir}]", "stages=[slice]"))
    shortest = min(first.store.slices.values(), key=lambda r: r.n_samples_16k)
    RaisesOnShortest.shortest = shortest.n_samples_16k
    target = "tests.extract.test_edge_cases.RaisesOnShortest"
    res = run(_cfg(tmp_path, f"[{voice_dir}]", f"f0._target_={target}", "device.batch_size=64"))
    names = {n for n, _ in res.failures["f0"]}
    same_len = {n for n, r in res.store.slices.items() if r.n_samples_16k == shortest.n_samples_16k}
    assert names == same_len and all("model crashed" in e for _, e in res.failures["f0"])
    assert len(res.store.stages["f0"]["done"]) == len(res.store.slices) - len(names)


def test_a_second_writer_is_refused(tmp_path, voice_dir):
    st = FeatureStore(tmp_path / "experiments" / "r")
    with st.lock():
        with pytest.raises(ExtractError, match="another run"):
            run(_cfg(tmp_path, f"[{voice_dir}]", "stages=[slice]"))
    run(_cfg(tmp_path, f"[{voice_dir}]", "stages=[slice]"))  # free again


def test_check_embedder_follows_the_features_actually_recorded(tmp_path, voice_dir):
    res = run(_cfg(tmp_path, f"[{voice_dir}]"))
    st = FeatureStore(res.store.root)
    st.check_embedder("spectral", 768)
    # a v1 run that starts (and is killed) resets the record: old 768-dim files don't count
    st.stage_todo("features", {"name": "spectral", "dim": 256, "version": "v1"})
    st.save()
    with pytest.raises(ValueError, match="no content features"):
        FeatureStore(res.store.root).check_embedder("spectral", 768)
    shutil.rmtree(res.store.root / "features")
