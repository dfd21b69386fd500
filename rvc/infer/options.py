"""The conversion knobs, with RVC's meanings and defaults (docs/formats.md §7)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from rvc.audio.formant import MAX_SEMITONES, QUEFRENCY_MS
from rvc.infer.effects import Effect, parse_chain

CHUNK_SHAPES = ("fixed", "exact")


@dataclass(frozen=True)
class ConvertOptions:
    """What a user sets per conversion. Defaults are the RVC WebUI's (CLI index_rate)."""

    pitch: float = 0.0  # semitones; +12 doubles the F0 fed to the model
    index_rate: float = 0.3  # 0..1: share of retrieved training features (0 = no index)
    protect: float = 0.33  # 0..0.5: unvoiced frames keep this much retrieval (0.5 = off)
    rms_mix_rate: float = 1.0  # 0..1: 1 keeps the output's loudness, 0 the input's envelope
    speaker: int = 0  # speaker id of a multi-speaker model
    filter_radius: int = 3  # ≥ 3: the method's conversion filter (harvest's 3-frame median, RVC)
    f0_smooth: int = 0  # odd median window in frames over the voiced F0 (0/1 = off)
    autotune: float = 0.0  # 0..1: pull F0 towards the nearest semitone (1 = snap)
    denoise: float = 0.0  # 0..1: noise reduction of the input first (needs the denoise extra)
    output_rate: int = 0  # Hz of the written file; 0 keeps the model's rate
    # semitones the input's formants (its timbre) move before conversion, the pitch kept
    # (Applio's formant shift, rvc/audio/formant.py); 0 = off, the input untouched
    formant: float = 0.0
    formant_quefrency: float = QUEFRENCY_MS  # ms: the envelope's lifter, < the pitch period
    # effects after conversion at the output rate, in order (rvc/infer/effects.py): entries
    # like {"name": "reverb", "room_size": 0.3}; built and checked here, before any work
    effects: tuple[Effect, ...] = ()
    # chunking (seconds), RVC's fp32 values: context padding, search for a quiet cut point
    # ±query around every `center`, only inputs longer than `max` are cut
    pad_s: float = 1.0
    query_s: float = 6.0
    center_s: float = 38.0
    max_s: float = 41.0
    # "fixed": every chunk padded to one of a few lengths set by the options above, so memory
    # does not grow with the input's length (rvc.infer.chunks.padded_length); "exact": each
    # chunk at its own length, the reference pipeline bit for bit
    chunk_shapes: str = "fixed"

    def __post_init__(self) -> None:
        _check_range("index_rate", self.index_rate, 0.0, 1.0)
        _check_range("protect", self.protect, 0.0, 0.5)
        _check_range("rms_mix_rate", self.rms_mix_rate, 0.0, 1.0)
        _check_range("autotune", self.autotune, 0.0, 1.0)
        _check_range("denoise", self.denoise, 0.0, 1.0)
        _check_range("pitch", self.pitch, -48.0, 48.0)
        _check_range("formant", self.formant, -MAX_SEMITONES, MAX_SEMITONES)
        _check_range("formant_quefrency", self.formant_quefrency, 0.1, 20.0)
        # a frozen field set once, here: any list of entries becomes a checked chain
        object.__setattr__(self, "effects", parse_chain(self.effects))
        if self.speaker < 0:
            raise ValueError(f"speaker must be ≥ 0, got {self.speaker}")
        if self.f0_smooth < 0 or (self.f0_smooth > 1 and self.f0_smooth % 2 == 0):
            raise ValueError(
                f"f0_smooth must be 0 or an odd number of frames, got {self.f0_smooth}"
            )
        if self.output_rate and self.output_rate < 8000:
            raise ValueError(
                f"output_rate must be 0 (the model's) or ≥ 8000 Hz, got {self.output_rate}"
            )
        for name in ("pad_s", "query_s", "center_s", "max_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not self.query_s < self.center_s <= self.max_s:
            raise ValueError(
                f"chunking needs query_s < center_s ≤ max_s, got {self.query_s}, "
                f"{self.center_s}, {self.max_s}"
            )
        if self.chunk_shapes not in CHUNK_SHAPES:
            raise ValueError(
                f"chunk_shapes must be one of {CHUNK_SHAPES}, got {self.chunk_shapes!r}"
            )

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> ConvertOptions:
        """Options from a config node; unknown names are an error listing the known ones."""
        values = dict(values)
        if values.pop("bucket_s", None) is not None:  # infer.yaml keeps the old name as null
            raise ValueError(
                "convert.bucket_s was replaced by convert.chunk_shapes: 'fixed' (the default) pads "
                "chunks to a few lengths, 'exact' converts each at its own length"
            )
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown conversion options {unknown}; known: {sorted(known)}")
        return cls(**values)

    def with_(self, **changes: Any) -> ConvertOptions:
        return replace(self, **changes)


def _check_range(name: str, value: float, lo: float, hi: float) -> None:
    if not lo <= float(value) <= hi:
        raise ValueError(f"{name} must be in [{lo}, {hi}], got {value}")
