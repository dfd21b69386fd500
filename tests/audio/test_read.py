import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from rvc.audio.read import (
    AudioDecodeError,
    ffmpeg_exe,
    find_media,
    load_audio,
    save_wav,
)

FREQ = 440.0
DUR = 1.5


def sine(sr: int, freq: float = FREQ, seconds: float = DUR, amp: float = 0.5) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * np.arange(round(seconds * sr)) / sr)).astype(np.float32)


def dominant_freq(x: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.argmax(spec) * sr / len(x)


def ffmpeg(*args: str) -> None:
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args]
    subprocess.run(cmd, check=True, capture_output=True)


SINE_IN = ["-f", "lavfi", "-i", f"sine=frequency={FREQ:g}:sample_rate=44100:duration={DUR}"]
VIDEO_IN = ["-f", "lavfi", "-i", f"testsrc=size=64x48:rate=10:duration={DUR}"]

# name -> ffmpeg output arguments (each file: a 440 Hz sine, 44.1 kHz except opus)
FFMPEG_FORMATS = {
    "a.mp3": [*SINE_IN, "-c:a", "libmp3lame"],
    "a.m4a": [*SINE_IN, "-c:a", "aac"],
    "a.aac": [*SINE_IN, "-c:a", "aac", "-f", "adts"],
    "a.webm": [*SINE_IN, "-c:a", "libopus"],
    "a.mkv": [*SINE_IN, "-c:a", "libvorbis"],
    "v.mp4": [*VIDEO_IN, *SINE_IN, "-c:v", "libx264", "-c:a", "aac", "-shortest"],
}


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("media")
    for name, args in FFMPEG_FORMATS.items():
        ffmpeg(*args, str(d / name))
    ffmpeg(*VIDEO_IN, "-c:v", "libx264", str(d / "silent_video.mp4"))
    return d


@pytest.mark.parametrize(
    "ext,subtype", [("wav", "PCM_16"), ("wav", "FLOAT"), ("flac", "PCM_24"), ("ogg", "VORBIS")]
)
def test_soundfile_formats(tmp_path, ext, subtype):
    x = sine(22050)
    p = tmp_path / f"tone.{ext}"
    sf.write(p, x, 22050, subtype=subtype)
    y, sr = load_audio(p)
    assert sr == 22050 and y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) - len(x)) <= (0 if ext != "ogg" else 64)
    assert dominant_freq(y, sr) == pytest.approx(FREQ, abs=2)
    if subtype == "FLOAT":
        np.testing.assert_array_equal(y, x)


@pytest.mark.parametrize("name", sorted(FFMPEG_FORMATS))
def test_ffmpeg_formats(media, name):
    y, sr = load_audio(media / name)
    assert sr in (44100, 48000)  # opus decodes at 48 kHz
    assert y.dtype == np.float32 and y.ndim == 1 and y.flags.writeable
    # lossy codecs add priming/padding samples: allow a few frames
    assert len(y) / sr == pytest.approx(DUR, abs=0.05)
    assert dominant_freq(y, sr) == pytest.approx(FREQ, abs=2)
    assert np.abs(y).max() == pytest.approx(1 / 8, rel=0.2)  # lavfi's sine is at 1/8 full scale
    y16, sr16 = load_audio(media / name, sr=16000)
    assert sr16 == 16000 and len(y16) == pytest.approx(len(y) * 16000 / sr, abs=2)
    assert dominant_freq(y16, sr16) == pytest.approx(FREQ, abs=2)


def test_video_without_audio(media):
    with pytest.raises(AudioDecodeError, match=r"silent_video\.mp4.*no audio stream"):
        load_audio(media / "silent_video.mp4")


def test_trim_soundfile_exact(tmp_path):
    x = sine(16000)
    p = tmp_path / "t.wav"
    sf.write(p, x, 16000, subtype="FLOAT")
    y, _ = load_audio(p, start=0.25, end=1.0)
    np.testing.assert_array_equal(y, x[4000:16000])
    y, _ = load_audio(p, start=1.0)
    np.testing.assert_array_equal(y, x[16000:])
    y, _ = load_audio(p, end=0.5)
    np.testing.assert_array_equal(y, x[:8000])
    with pytest.raises(AudioDecodeError, match="too short after trimming"):
        load_audio(p, start=5.0)
    with pytest.raises(ValueError):
        load_audio(p, start=1.0, end=0.5)
    with pytest.raises(ValueError):
        load_audio(p, start=-1.0)


@pytest.mark.parametrize("codec,ext", [("flac", "mka"), ("libmp3lame", "mp3"), ("aac", "m4a")])
def test_trim_ffmpeg(tmp_path, codec, ext):
    sr = 44100
    x = np.clip(0.2 * np.random.default_rng(0).standard_normal(2 * sr), -0.99, 0.99).astype(
        np.float32
    )
    src = tmp_path / "noise.wav"
    sf.write(src, x, sr, subtype="FLOAT")
    p = tmp_path / f"noise.{ext}"
    ffmpeg("-i", str(src), "-c:a", codec, str(p))
    full, _ = load_audio(p)
    y, sr2 = load_audio(p, start=0.5, end=1.25)
    assert sr2 == sr and len(y) == round(0.75 * sr)
    # sample-exact against the full decode (container timestamps would be ms-coarse)
    np.testing.assert_array_equal(y, full[round(0.5 * sr) : round(1.25 * sr)])
    tail, _ = load_audio(p, start=1.5)
    np.testing.assert_array_equal(tail, full[round(1.5 * sr) :])
    if codec == "flac":  # lossless: also the original samples (16-bit)
        np.testing.assert_allclose(y, x[round(0.5 * sr) : round(1.25 * sr)], atol=1e-4)


def test_multichannel_downmix(tmp_path):
    sr = 16000
    chans = np.stack([sine(sr, 200.0 * (k + 1), amp=0.1) for k in range(6)], axis=1)  # [T, 6]
    p = tmp_path / "six.wav"
    sf.write(p, chans, sr, subtype="FLOAT")
    mono, _ = load_audio(p)
    np.testing.assert_allclose(mono, chans.mean(axis=1), atol=1e-7)
    multi, _ = load_audio(p, mono=False)
    assert multi.shape == (len(chans), 6)
    # the same through ffmpeg (5.1 AAC in mp4)
    m4a = tmp_path / "six.m4a"
    ffmpeg("-i", str(p), "-c:a", "aac", "-b:a", "384k", str(m4a))
    multi2, _ = load_audio(m4a, mono=False)
    mono2, _ = load_audio(m4a)
    assert multi2.shape[1] == 6
    np.testing.assert_allclose(mono2, multi2.mean(axis=1), atol=1e-6)


def test_8khz_upsampled(tmp_path):
    p = tmp_path / "phone.wav"
    sf.write(p, sine(8000, 1000.0), 8000, subtype="PCM_16")
    y, sr = load_audio(p, sr=40000)
    assert sr == 40000 and len(y) == round(DUR * 40000)
    assert dominant_freq(y, sr) == pytest.approx(1000.0, abs=2)
    spec = np.abs(np.fft.rfft(y)) ** 2
    freqs = np.fft.rfftfreq(len(y), 1 / sr)
    assert spec[freqs > 4100].sum() < 1e-4 * spec.sum()  # nothing invented above the old Nyquist


def bad_files(d: Path) -> dict[str, str]:
    (d / "empty.wav").write_bytes(b"")
    (d / "corrupt.flac").write_bytes(np.random.default_rng(0).bytes(4096))
    (d / "notes.wav").write_text("this is a text file, not audio\n" * 20)
    sf.write(d / "one_sample.wav", np.array([0.1], np.float32), 16000)
    nan = sine(16000)
    nan[100] = np.nan
    nan[200] = np.inf
    sf.write(d / "nan.wav", nan, 16000, subtype="FLOAT")
    return {
        "empty.wav": "empty",
        "corrupt.flac": "not a decodable",
        "notes.wav": "not a decodable",
        "one_sample.wav": "too short",
        "nan.wav": "2 NaN/Inf",
        "missing.mp3": "not found",
    }


def test_bad_inputs_raise_with_file_name(tmp_path):
    for name, problem in bad_files(tmp_path).items():
        with pytest.raises(AudioDecodeError) as e:
            load_audio(tmp_path / name)
        assert name in str(e.value) and problem in str(e.value), str(e.value)
    with pytest.raises(AudioDecodeError, match="directory"):
        load_audio(tmp_path)


def test_wrong_extension_still_decodes(media, tmp_path):
    p = tmp_path / "actually_mp3.wav"
    p.write_bytes((media / "a.mp3").read_bytes())
    y, sr = load_audio(p)
    assert dominant_freq(y, sr) == pytest.approx(FREQ, abs=2)


def test_save_wav(tmp_path):
    x = sine(16000, amp=1.5)  # out of range on purpose
    p = save_wav(tmp_path / "sub" / "f.wav", x, 16000)
    np.testing.assert_array_equal(sf.read(p, dtype="float32")[0], x)
    q = save_wav(tmp_path / "i.wav", x, 16000, subtype="PCM_16")
    y, _ = sf.read(q, dtype="float32")
    assert sf.info(q).subtype == "PCM_16" and np.abs(y).max() <= 1.0
    np.testing.assert_allclose(y, np.clip(x, -1, 1), atol=1 / 32767)  # clipped, not wrapped
    assert sorted(f.name for f in tmp_path.rglob("*") if f.is_file()) == ["f.wav", "i.wav"]
    bad = x.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        save_wav(tmp_path / "n.wav", bad, 16000)
    assert not (tmp_path / "n.wav").exists()


def test_find_media(tmp_path):
    for rel in [
        "a/x.wav",
        "a/b/y.MP3",
        "a/b/c/z.mp4",
        "a/notes.txt",
        "a/._x.wav",
        "c.flac",
        "odd.bin",
    ]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"0")
    r = tmp_path.resolve()
    got = find_media([str(tmp_path / "a")])
    assert got == sorted([r / "a/x.wav", r / "a/b/y.MP3", r / "a/b/c/z.mp4"])
    # folder + explicit file + glob overlap: deduplicated and sorted
    got = find_media(
        [
            tmp_path / "a",
            str(tmp_path / "a" / "x.wav"),
            str(tmp_path / "*.flac"),
            str(tmp_path / "**/*.wav"),
        ]
    )
    assert got == sorted([r / "a/x.wav", r / "a/b/y.MP3", r / "a/b/c/z.mp4", r / "c.flac"])
    assert find_media([str(tmp_path / "odd.bin")]) == [r / "odd.bin"]  # named files are trusted
    assert find_media([str(tmp_path / "*")]) == [
        r / "a/b/c/z.mp4",
        r / "a/b/y.MP3",
        r / "a/x.wav",
        r / "c.flac",
    ]
    with pytest.raises(FileNotFoundError, match="nope"):
        find_media([str(tmp_path / "nope.wav")])
    with pytest.raises(FileNotFoundError, match="match"):
        find_media([str(tmp_path / "*.ogg")])
