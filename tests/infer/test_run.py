"""Conversion from files: loading any voice model, the index and embedder checks, formats,
batches with a bad file, and infer.py."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from rvc.audio.read import load_audio
from rvc.infer import ConverterLoadError, ConvertOptions, InferError, convert_files, load_converter
from rvc.infer.run import run
from tests.conftest import compose, write
from tests.infer.conftest import save_foreign, save_ours, voice16k

ROOT = Path(__file__).resolve().parents[2]


def _cfg(tmp_path: Path, voice: Path, inputs, *overrides: str):
    inputs = inputs if isinstance(inputs, list) else [inputs]
    return compose("infer", [f"voice={voice}", f"input=[{','.join(map(str, inputs))}]",
                             f"paths.root={tmp_path}", f"out_dir={tmp_path / 'out'}", "f0=pm",
                             *overrides])  # fmt: skip


def test_end_to_end_from_a_file_in_the_models_rate(tmp_path, voice_files):
    x = voice16k(3.0)
    src = write(tmp_path / "speech.flac", x, 16000)
    res = run(_cfg(tmp_path, voice_files / "v.pth", src, "pitch=3", "index_rate=0.5"))
    assert not res.failed and len(res.written) == 1
    out = res.written[0].output
    assert out == tmp_path / "out" / "speech_v.wav"
    y, sr = sf.read(out)
    assert sr == 40000 and abs(len(y) / sr - len(x) / 16000) < 0.05 and np.abs(y).max() > 0.01


@pytest.mark.parametrize("fmt", ["flac", "ogg", "mp3", "m4a"])
def test_output_formats_decode_back(tmp_path, voice_files, fmt):
    x = voice16k(2.0)
    src = write(tmp_path / "a.wav", x, 16000)
    res = run(_cfg(tmp_path, voice_files / "v.pth", src, f"format={fmt}",
                   "convert.output_rate=32000", 'output_template="{stem}_{voice}_{pitch}.{format}"'))  # fmt: skip
    out = res.written[0].output
    assert out.name == f"a_v_+0.{fmt}"
    y, sr = load_audio(out)
    assert sr == 32000 and abs(len(y) / sr - len(x) / 16000) < 0.1 and np.abs(y).max() > 0.01
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize(
    "kind",
    ["v1", "no_f0", "32k", "48k", "refinegan"],
)
def test_foreign_format_models_convert(tmp_path, kind):
    kw = {"v1": {"version": "v1"}, "no_f0": {"use_f0": False}, "32k": {"sr": 32000},
          "48k": {"sr": 48000}, "refinegan": {"vocoder": "RefineGAN"}}[kind]  # fmt: skip
    path = save_foreign(tmp_path / f"{kind}.pth", **kw)
    conv = load_converter(path, index=None, f0="pm", embedder="spectral")
    y = conv.convert(voice16k(2.0), ConvertOptions(), progress=False)
    rate = kw.get("sr", 40000)
    assert conv.sample_rate == rate and abs(len(y) / rate - len(voice16k(2.0)) / 16000) < 0.05
    assert np.isfinite(y).all() and np.abs(y).max() > 0
    assert conv.embedder.dim == (256 if kind == "v1" else 768)


def test_embedder_from_metadata_and_webui_default(tmp_path, voice_files):
    assert load_converter(voice_files / "v.pth", index=None, f0="pm").embedder.name == "spectral"
    # WebUI files name no embedder: ContentVec, which is hub-only (a clear error offline)
    webui = save_foreign(tmp_path / "old.pth")
    from rvc.embedders.hubert import HubertEmbedder

    built = []
    monkey = pytest.MonkeyPatch()
    monkey.setattr(HubertEmbedder, "load", lambda self: built.append(self.name) or self)
    try:
        conv = load_converter(webui, index=None, f0="pm")
    finally:
        monkey.undo()
    assert built == ["contentvec"] and conv.embedder.dim == 768


def test_index_found_beside_the_model_under_either_name(tmp_path, voice_files):
    d = tmp_path / "m"
    d.mkdir()
    shutil.copy(voice_files / "v.pth", d / "v.pth")
    assert load_converter(d / "v.pth", f0="pm").index is None  # none there: no retrieval
    shutil.copy(voice_files / "v.index", d / "added_IVF12_Flat_nprobe_1_v_v2.index")
    assert load_converter(d / "v.pth", f0="pm").index.ntotal > 0


def test_dimension_mismatch_names_model_embedder_and_index(tmp_path, voice_files):
    v1 = save_ours(tmp_path / "v1.pth", version="v1")
    with pytest.raises(ConverterLoadError, match=r"model 256, embedder 256, index 768"):
        load_converter(v1, index=voice_files / "v.index", f0="pm")
    from rvc.embedders.spectral import SpectralEmbedder

    with pytest.raises(ConverterLoadError, match=r"model 768, embedder 256"):
        load_converter(voice_files / "v.pth", index=None, f0="pm",
                       embedder=SpectralEmbedder(version="v1", dim=256))  # fmt: skip


@pytest.mark.parametrize("what", ["missing", "corrupt", "index_corrupt", "index_missing"])
def test_bad_model_or_index_is_a_clear_error(tmp_path, voice_files, what):
    pth, index = voice_files / "v.pth", "auto"
    if what == "missing":
        pth = tmp_path / "nope.pth"
    elif what == "corrupt":
        pth = tmp_path / "c.pth"
        pth.write_bytes((voice_files / "v.pth").read_bytes()[:500])
    elif what == "index_corrupt":
        index = tmp_path / "c.index"
        index.write_bytes(b"not faiss")
    else:
        index = tmp_path / "absent.index"
    with pytest.raises(
        InferError, match=str(pth.name if "index" not in what else Path(index).name)
    ):
        run(_cfg(tmp_path, pth, voice_files / "v.pth", f"index_file={index}"))


def test_batch_with_a_corrupt_file_converts_the_rest(tmp_path, voice_files):
    folder = tmp_path / "in"
    write(folder / "a.wav", voice16k(2.0), 16000)
    write(folder / "sub" / "b.wav", voice16k(2.0, f0=200), 22050 // 2 * 2)
    (folder / "c.wav").write_bytes(b"RIFF\x00\x00not audio")
    res = run(_cfg(tmp_path, voice_files / "v.pth", folder))
    assert sorted(f.output.name for f in res.written) == ["a_v.wav", "b_v.wav"]
    assert [Path(f.source).name for f in res.failed] == ["c.wav"]
    assert "not a decodable" in res.failed[0].error


def test_unwritable_output_leaves_no_file_and_reports(tmp_path, voice_files):
    src = write(tmp_path / "a.wav", voice16k(2.0), 16000)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = run(_cfg(tmp_path, voice_files / "v.pth", src, f"out_dir={blocker / 'out'}"))
    assert len(res.failed) == 1 and not res.written and "file" in res.failed[0].error


def test_one_sample_input_is_reported(tmp_path, voice_files):
    src = tmp_path / "tiny.wav"
    sf.write(src, np.zeros(1, np.float32), 16000)
    res = run(_cfg(tmp_path, voice_files / "v.pth", src))
    assert len(res.failed) == 1 and "short" in res.failed[0].error


def test_python_api_converts_files(tmp_path, voice_files):
    src = write(tmp_path / "a.wav", voice16k(2.0), 16000)
    conv = load_converter(voice_files / "v.pth", f0="pm")
    res = convert_files(conv, [str(src)], ConvertOptions(pitch=-2), tmp_path / "o",
                        output=tmp_path / "exact.flac", progress=False)  # fmt: skip
    assert res.written[0].output == tmp_path / "exact.flac" and (tmp_path / "exact.flac").exists()


def test_infer_entry_point_summary_and_errors(tmp_path, voice_files):
    src = write(tmp_path / "a.wav", voice16k(2.0), 16000)
    base = [sys.executable, str(ROOT / "infer.py"), f"paths.root={tmp_path}", "f0=pm"]
    ok = subprocess.run([*base, f"voice={voice_files / 'v.pth'}", f"input={src}",
                         f"out_dir={tmp_path / 'o'}"], capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "converted 1 file(s)" in ok.stdout and str(tmp_path / "o" / "a_v.wav") in ok.stdout
    bad = subprocess.run([*base, f"voice={tmp_path / 'none.pth'}", f"input={src}"],
                         capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert bad.returncode == 1 and "none.pth" in bad.stderr and "Traceback" not in bad.stderr
    assert torch  # torch stays importable after the subprocesses (no global state touched)


def test_top_level_api_names():
    import rvc
    from rvc.infer import load_converter as direct

    assert rvc.load_converter is direct and rvc.ConvertOptions is ConvertOptions
    with pytest.raises(AttributeError):
        rvc.no_such_name  # noqa: B018


def test_url_input_is_downloaded_and_converted(tmp_path, voice_files, http_root):
    pytest.importorskip("yt_dlp")
    root, base = http_root
    write(root / "talk.wav", voice16k(2.0), 16000)
    res = run(_cfg(tmp_path, voice_files / "v.pth", f"{base}/talk.wav"))
    assert [f.output.name for f in res.written] == ["talk_v.wav"] and not res.failed
    assert any((tmp_path / "downloads").iterdir())
    missing = run(_cfg(tmp_path, voice_files / "v.pth", f"{base}/missing.wav"))
    assert not missing.written and "missing.wav" in missing.failed[0].source


def _band_db(y: np.ndarray, sr: int, lo: float) -> float:
    """Energy above `lo` Hz, dB."""
    spec = np.abs(np.fft.rfft(y)) ** 2
    return 10 * np.log10(spec[np.fft.rfftfreq(len(y), 1 / sr) > lo].sum() + 1e-20)


def test_effects_and_formant_end_to_end(tmp_path, voice_files, quiet, monkeypatch):
    """infer.py's run with an effects chain and a formant shift: each changes the output as
    it says, and a bad chain is refused before any model is loaded."""
    src = write(tmp_path / "a.wav", voice16k(2.0), 16000)

    def convert(name: str, *overrides: str) -> np.ndarray:
        res = run(_cfg(tmp_path, voice_files / "v.pth", src, "index_rate=0",
                       f"output={tmp_path / name}.wav", *overrides))  # fmt: skip
        assert not res.failed, res.failed
        return sf.read(res.written[0].output, dtype="float32")[0]

    plain = convert("plain")
    quieter = convert("gain", "effects.chain=[{name: gain, gain_db: -6}]")
    rms = [float(np.sqrt(np.mean(y.astype(np.float64) ** 2))) for y in (plain, quieter)]
    assert rms[1] / rms[0] == pytest.approx(10 ** (-6 / 20), rel=0.01)
    radio = convert("radio", "effects=radio")  # the preset's 3.4 kHz low-pass, 4 poles
    assert _band_db(plain, 40000, 6000) - _band_db(radio, 40000, 6000) > 20
    shifted = convert("formant", "formant=4")
    assert shifted.shape == plain.shape and np.isfinite(shifted).all()
    assert not np.allclose(shifted, plain, atol=1e-3)  # the model heard another timbre
    assert np.array_equal(convert("formant0", "convert.formant=0"), plain)

    import rvc.infer.load

    monkeypatch.setattr(rvc.infer.load, "load_converter", lambda *a, **k: pytest.fail("loaded"))
    with pytest.raises(InferError, match=r"unknown effect 'echoo'; valid: chorus, compressor"):
        run(_cfg(tmp_path, voice_files / "v.pth", src, "effects.chain=[{name: echoo}]"))


def test_python_api_applies_effects_at_the_output_rate(voice_files, quiet):
    conv = load_converter(voice_files / "v.pth", f0="pm")
    x = voice16k(2.0)
    opts = ConvertOptions(index_rate=0, output_rate=16000)
    plain = conv.convert(x, opts, progress=False)
    low = conv.convert(x, opts.with_(effects=[{"name": "lowpass", "cutoff_frequency_hz": 1000}]),
                       progress=False)  # fmt: skip
    assert len(low) == len(plain) and _band_db(plain, 16000, 5000) - _band_db(low, 16000, 5000) > 20
