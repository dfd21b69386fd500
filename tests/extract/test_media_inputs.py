"""extract over a folder of mixed audio/video, a URL on a local HTTP server, and a 1 h file."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from rvc.audio.read import ffmpeg_exe
from rvc.extract.run import run
from tests.conftest import compose, voiced_clip, write


def _cfg(tmp_path, inputs: str, *extra: str):
    return compose(
        "extract",
        [
            "name=m",
            f"paths.root={tmp_path}",
            f"inputs={inputs}",
            "device.num_workers=1",
            "stages=[slice]",
            *extra,
        ],
    )


def _encode(src: Path, dst: Path, *args: str) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", *args, "-i", str(src), str(dst)], check=True)
    return dst


def test_mixed_audio_and_video_folder(tmp_path):
    wav = write(tmp_path / "src.wav", voiced_clip(44100, 150.0), 44100)
    d = tmp_path / "mixed"
    write(d / "a.flac", voiced_clip(40000, 130.0, seed=1), 40000)
    _encode(wav, d / "b.mp3")
    _encode(wav, d / "c.m4a")
    # a real video: a test picture plus the voice as its audio track
    d.mkdir(exist_ok=True)
    subprocess.run(
        [
            ffmpeg_exe(),
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=64x48:rate=10:duration=5",
            "-i",
            str(wav),
            "-shortest",
            "-c:v",
            "mpeg4",
            "-c:a",
            "aac",
            str(d / "d.mp4"),
        ],
        check=True,
    )
    (d / "readme.txt").write_text("not media: ignored by the folder scan")
    res = run(_cfg(tmp_path, f"[{d}]"))
    ok = {Path(s.path).name for s in res.store.ok_sources()}
    assert ok == {"a.flac", "b.mp3", "c.m4a", "d.mp4"}
    for s in res.store.ok_sources():
        assert s.slices and 4.0 < s.duration < 5.6, (s.path, s.duration)


def test_url_input_is_downloaded_once_and_sliced(tmp_path, http_root):
    root, base = http_root
    _encode(write(tmp_path / "v.wav", voiced_clip(44100, 170.0), 44100), root / "talk.webm")
    res = run(_cfg(tmp_path, f"[{base}/talk.webm]"))
    (src,) = res.store.ok_sources()
    assert Path(src.path).parent == (tmp_path / "downloads").resolve() and src.slices
    again = run(_cfg(tmp_path, f"[{base}/talk.webm]"))
    assert again.reused == 1 and again.ingested == 0


@pytest.mark.slow
def test_one_hour_file(tmp_path):
    sr = 8000
    clip = voiced_clip(sr, 140.0)
    reps = int(3600 * sr / len(clip)) + 1
    long = np.tile(clip, reps)[: 3600 * sr]
    write(tmp_path / "long" / "hour.wav", long, sr)
    res = run(_cfg(tmp_path, f"[{tmp_path / 'long'}]"))
    (src,) = res.store.ok_sources()
    assert abs(src.duration - 3600) < 1 and len(res.store.slices) > 1000
    assert res.audit["usable_minutes"] > 30


def test_bad_url_is_reported_and_the_rest_proceeds(tmp_path, http_root):
    root, base = http_root
    root.mkdir(exist_ok=True)
    good = write(tmp_path / "in" / "a.wav", voiced_clip(40000, 150.0), 40000)
    res = run(_cfg(tmp_path, f"[{good},{base}/missing.webm]"))
    assert [Path(s.path).name for s in res.store.ok_sources()] == ["a.wav"]
    (bad,) = res.audit["dropped"]
    assert bad["file"].endswith("missing.webm") and bad["reason"]
