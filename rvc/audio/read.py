"""Decode audio from any media file (soundfile first, PyPI ffmpeg as fallback), save WAVs, find media.

Everything returns float32 numpy; mono `[T]` unless `mono=False` (then `[T, C]`).
"""

from __future__ import annotations

import glob
import os
import struct
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

from rvc.errors import RVCError
from rvc.utils.atomic import atomic_path

AUDIO_EXTENSIONS = frozenset(
    {
        ".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aac", ".wma",
        ".aif", ".aiff", ".aifc", ".au", ".snd", ".caf", ".w64", ".rf64", ".mka", ".ac3",
        ".amr", ".ape", ".wv", ".mp2", ".spx",
    }
)  # fmt: skip
VIDEO_EXTENSIONS = frozenset(
    {
        ".mp4", ".m4v", ".mkv", ".webm", ".mov", ".avi", ".flv", ".wmv", ".mpg", ".mpeg",
        ".ts", ".mts", ".3gp", ".ogv",
    }
)  # fmt: skip
MEDIA_EXTENSIONS = AUDIO_EXTENSIONS | VIDEO_EXTENSIONS

# containers libsndfile reads natively (and seeks in cheaply); everything else goes to ffmpeg
_SOUNDFILE_EXTENSIONS = frozenset(
    {".wav", ".wave", ".flac", ".ogg", ".oga", ".aif", ".aiff", ".aifc", ".au", ".snd", ".caf"}
    | {".w64", ".rf64"}
)


class AudioDecodeError(RVCError):
    """A media file could not be decoded into usable audio (the message names file and problem)."""


def _fail(path: Path, problem: str) -> AudioDecodeError:
    return AudioDecodeError(f"{path}: {problem}")


def _check_trim(start: float | None, end: float | None) -> None:
    if start is not None and start < 0:
        raise ValueError(f"start must be >= 0 seconds, got {start}")
    if end is not None and end <= (start or 0.0):
        raise ValueError(f"end ({end}) must be after start ({start or 0.0})")


def _check_file(path: Path) -> None:
    if not path.exists():
        raise _fail(path, "file not found")
    if path.is_dir():
        raise _fail(path, "is a directory, not a media file")
    if path.stat().st_size == 0:
        raise _fail(path, "empty file (0 bytes)")


def _read_soundfile(path: Path, start: float | None, end: float | None) -> tuple[np.ndarray, int]:
    """Decode with libsndfile; raises soundfile's own errors for the caller to fall back on."""
    with sf.SoundFile(path) as f:
        sr, n = f.samplerate, f.frames
        a = min(n, round(start * sr)) if start else 0
        b = min(n, round(end * sr)) if end is not None else n
        if a > 0:
            f.seek(a)
        audio = f.read(max(0, b - a), dtype="float32", always_2d=True)  # [T, C]
    return audio, sr


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary shipped by the `imageio-ffmpeg` wheel."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _ffmpeg_input(path: Path) -> str:
    # the file: protocol stops names such as "-x.mp3" or "a:b.mp3" being read as options/protocols
    return "file:" + os.fspath(path.absolute())


def _parse_wav_stream(data: bytes) -> tuple[np.ndarray, int]:
    """Parse the float WAV ffmpeg writes to a pipe (sizes in the header may be placeholders)."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("ffmpeg produced no WAV stream")
    pos, channels, sr = 12, 0, 0
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        if cid == b"fmt ":
            channels, sr = struct.unpack("<HI", data[pos + 10 : pos + 16])
        elif cid == b"data":
            if not channels:
                raise ValueError("WAV data before format chunk")
            body = data[pos + 8 :]
            body = body[: len(body) - len(body) % (4 * channels)]
            # copy: frombuffer views the immutable bytes, callers expect a writable array
            return np.frombuffer(body, dtype="<f4").reshape(-1, channels).copy(), sr  # [T, C]
        pos += 8 + size + (size & 1)
    raise ValueError("no data chunk in ffmpeg output")


def _read_ffmpeg(path: Path, start: float | None, end: float | None) -> tuple[np.ndarray, int]:
    """Decode the first audio stream with ffmpeg at its native rate and channel count."""
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error"]
    cmd += ["-i", _ffmpeg_input(path), "-map", "0:a:0", "-vn", "-sn", "-dn"]
    if start or end is not None:
        # trim on sample counts (pts renumbered N/SR), not container timestamps: `-ss`/`-to`
        # land up to ~10 ms off in mkv (ms timestamps) and m4a (edit lists); the margin on
        # `end` is cut off exactly below
        trim = f"start={start or 0.0:.6f}" + (f":end={end + 0.05:.6f}" if end is not None else "")
        cmd += ["-af", f"asetpts=N/SR/TB,atrim={trim}"]
    cmd += ["-f", "wav", "-acodec", "pcm_f32le", "-"]
    proc = subprocess.run(cmd, capture_output=True, check=False)
    err = proc.stderr.decode("utf-8", "replace").strip()
    if proc.returncode != 0:
        if "matches no streams" in err:
            raise _fail(path, "no audio stream (a video without sound?)")
        last = err.splitlines()[-1] if err else f"exit code {proc.returncode}"
        raise _fail(path, f"not a decodable audio/video file (ffmpeg: {last})")
    try:
        audio, sr = _parse_wav_stream(proc.stdout)
    except ValueError as e:
        raise _fail(path, f"ffmpeg decoding failed: {e}") from e
    if end is not None:
        audio = audio[: max(0, round(end * sr) - round((start or 0.0) * sr))]
    return audio, sr


def load_audio(
    path: str | os.PathLike,
    sr: int | None = None,
    mono: bool = True,
    start: float | None = None,
    end: float | None = None,
    min_duration: float = 0.001,
) -> tuple[np.ndarray, int]:
    """Decode a media file to float32 `[T]` (or `[T, C]` if not mono), resampled to `sr` if given.

    `start`/`end` trim in seconds. Raises AudioDecodeError for missing, empty, corrupt or
    non-audio files, files without an audio stream, audio shorter than `min_duration`
    seconds (always at least 2 samples) and audio containing NaN/Inf samples.
    """
    path = Path(path)
    _check_trim(start, end)
    _check_file(path)
    audio = None
    if path.suffix.lower() in _SOUNDFILE_EXTENSIONS:
        try:
            audio, native_sr = _read_soundfile(path, start, end)
        except (sf.LibsndfileError, RuntimeError, TypeError):
            audio = None  # wrong extension or a codec libsndfile lacks: let ffmpeg try
    if audio is None:
        audio, native_sr = _read_ffmpeg(path, start, end)

    trim = f" after trimming to [{start or 0.0}, {end if end is not None else 'end'}] s"
    trim = trim if (start or end is not None) else ""
    n = audio.shape[0]
    if n < max(2, round(min_duration * native_sr)):
        raise _fail(
            path, f"too short{trim}: {n} sample(s) at {native_sr} Hz ({n / native_sr:.4f} s)"
        )
    finite = np.isfinite(audio)
    if not finite.all():
        bad = int(audio.size - finite.sum())
        raise _fail(path, f"contains {bad} NaN/Inf sample value(s); the file is damaged")
    if mono:
        audio = audio.mean(axis=1) if audio.shape[1] > 1 else audio[:, 0]  # [T]
    if sr is not None and sr != native_sr:
        from rvc.audio.process import resample

        audio = resample(audio, native_sr, sr)
    return np.ascontiguousarray(audio, dtype=np.float32), int(sr or native_sr)


def save_wav(path: str | os.PathLike, audio: np.ndarray, sr: int, subtype: str = "FLOAT") -> Path:
    """Atomically write `[T]` or `[T, C]` audio as WAV (`subtype` "FLOAT" or "PCM_16", ...)."""
    audio = np.asarray(audio)
    if audio.ndim not in (1, 2) or audio.shape[0] == 0:
        raise ValueError(
            f"{path}: audio must be a non-empty [T] or [T, C] array, got {audio.shape}"
        )
    if not np.isfinite(audio).all():
        raise ValueError(f"{path}: refusing to write audio with NaN/Inf samples")
    if subtype.upper().startswith("PCM"):
        audio = np.clip(audio, -1.0, 1.0)  # libsndfile wraps rather than clips out-of-range ints
    with atomic_path(path, suffix=".wav") as tmp:
        sf.write(tmp, audio.astype(np.float32), sr, subtype=subtype, format="WAV")
    return Path(path)


def _is_media(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in MEDIA_EXTENSIONS and not p.name.startswith(".")


def find_media(inputs: list[str | os.PathLike]) -> list[Path]:
    """Expand files, folders (recursively) and glob patterns into a sorted, de-duplicated list.

    Files named explicitly are kept whatever their extension; folders and globs yield only
    files with a known audio/video extension (hidden files such as `._x.wav` skipped).
    """
    found: set[Path] = set()
    for item in inputs:
        s = os.path.expanduser(os.fspath(item))
        p = Path(s)
        if p.is_dir():
            found.update(q.resolve() for q in p.rglob("*") if _is_media(q))
        elif p.is_file():
            found.add(p.resolve())
        elif glob.has_magic(s):
            matches = [Path(m) for m in glob.glob(s, recursive=True)]
            if not matches:
                raise FileNotFoundError(f"no files match the pattern '{s}'")
            for m in matches:
                if m.is_dir():
                    found.update(q.resolve() for q in m.rglob("*") if _is_media(q))
                elif _is_media(m):
                    found.add(m.resolve())
        else:
            raise FileNotFoundError(f"input not found: '{s}'")
    return sorted(found)
