"""RVC's file and signal facts, each stated once (docs/formats.md says where each comes from).

Sizes that depend on (version, rate) are the table of `rvc/models/layouts.py`; the facts here
are the ones every stage shares: the 16 kHz analysis rate, how a `.pth` spells its rate, the
hub repositories, the mute slice, file digests.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from rvc.errors import RVCError

# F0 estimators and content embedders read 16 kHz audio; at RVC's 10 ms hop (160 samples)
# one F0 frame is two feature frames' worth of 20 ms HuBERT frames, upsampled ×2.
ANALYSIS_RATE = 16000
ANALYSIS_HOP = 160

# RVC's mute slices (`0_gt_wavs/mute*.wav` and their features): 3 s of silence per rate
MUTE_SECONDS = 3.0

# hub repositories of the published weights (pretrained G/D, embedders, RMVPE)
RVC_REPO = "lj1995/VoiceConversionWebUI"
APPLIO_REPO = "IAHispano/Applio"


class SampleRateError(RVCError, ValueError):
    """A value that is not a sample rate (the message says where it was read)."""


def parse_sample_rate(value: Any, where: str = "sample rate") -> int:
    """40000, 40000.0, "40000", "40k" or "40K" → 40000 (a `.pth`'s `sr`, a config, a CLI)."""
    if isinstance(value, bool):
        raise SampleRateError(f"{where}: not a sample rate: {value!r}")
    if isinstance(value, (int, float)) and float(value).is_integer() and value > 0:
        return int(value)
    if isinstance(value, str):
        s = value.strip().lower()
        try:
            rate = int(float(s[:-1]) * 1000) if s.endswith("k") else int(s)
        except ValueError:
            rate = 0
        if rate > 0:
            return rate
    raise SampleRateError(f"{where}: not a sample rate: {value!r}")


def khz(sample_rate: int) -> str:
    """40000 → "40k", as RVC's file names spell a rate."""
    return f"{sample_rate // 1000}k"


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """sha256 hex of a file's bytes (store sources, pretrained files, exported models)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def short_sha256(data: bytes, length: int = 16) -> str:
    """The first `length` hex digits of sha256(data): the short ids of manifests, slices, URLs."""
    return hashlib.sha256(data).hexdigest()[:length]


# the vocoder of RVC WebUI files, which have no `vocoder` key (conf/vocoder/hifigan.yaml's name)
RVC_VOCODER = "HiFi-GAN"
