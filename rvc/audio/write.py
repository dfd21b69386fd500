"""Write converted audio in the formats users ask for, atomically.

wav/flac (16-bit) and ogg (Vorbis) go through libsndfile; mp3 and m4a (AAC) through the ffmpeg
binary of the `imageio-ffmpeg` wheel, from a temporary WAV.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from rvc.audio.read import ffmpeg_exe, save_wav
from rvc.utils.atomic import atomic_path

SOUNDFILE_FORMATS = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "ogg": ("OGG", "VORBIS")}
FFMPEG_CODECS = {
    "mp3": ["-c:a", "libmp3lame", "-b:a", "192k"],
    "m4a": ["-c:a", "aac", "-b:a", "192k"],
}
FORMATS = tuple(SOUNDFILE_FORMATS) + tuple(FFMPEG_CODECS)


def save_audio(path: str | os.PathLike, audio: np.ndarray, sr: int) -> Path:
    """Write mono float audio; the format comes from the suffix (one of `FORMATS`)."""
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ValueError(f"{path}: unknown output format {fmt!r}; use one of {', '.join(FORMATS)}")
    audio = np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0)
    if audio.ndim != 1 or len(audio) == 0 or not np.isfinite(audio).all():
        raise ValueError(f"{path}: refusing to write empty, multi-channel or non-finite audio")
    if fmt in SOUNDFILE_FORMATS:
        container, subtype = SOUNDFILE_FORMATS[fmt]
        with atomic_path(path) as tmp:
            sf.write(tmp, audio, sr, format=container, subtype=subtype)
        return path
    with tempfile.TemporaryDirectory() as work:
        wav = save_wav(Path(work) / "in.wav", audio, sr, subtype="PCM_16")
        with atomic_path(path) as tmp:
            cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
                   "-i", str(wav), *FFMPEG_CODECS[fmt], "file:" + str(tmp)]  # fmt: skip
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                raise OSError(
                    f"{path}: ffmpeg could not encode {fmt}: {done.stderr.strip()[-300:]}"
                )
    return path
