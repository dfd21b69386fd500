"""Effects after conversion: a chain of `pedalboard` (Spotify's) plugins at the output rate.

A chain is a list of entries, applied in order, each an effect's name and any of its
parameters (the rest keep the defaults below):

    [{name: highpass, cutoff_frequency_hz: 300}, {name: compressor}, {name: reverb, room_size: 0.3}]

Parameter names are pedalboard's own, so its documentation reads for ours. Names and
parameters are checked when the options are built (`ConvertOptions`), before any conversion
work; values are checked by building the plugins then too (pedalboard's range checks).
`EffectChain` keeps the plugins' state between calls (`reset=False`), so live conversion
runs the same chain block by block with reverb tails and echoes carried across blocks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

# name → (pedalboard class, {parameter: default}). Defaults are pedalboard's except where its
# own would do nothing to a voice (Compressor's ratio 1, Gain's +1 dB, filters at 50 Hz) or
# be too much (Delay's half-second echo at 50 % mix). Two are built differently (`_plugins`):
# - highpass/lowpass: pedalboard's are one pole (6 dB/octave: a 5 kHz tone only 14 dB below a
#   1 kHz cut), so `poles` of them in series (4: 24 dB/octave);
# - limiter: pedalboard's (JUCE's) adds make-up gain up to 0 dBFS and has a fixed -10 dB
#   compressor stage in front, so quiet audio comes out louder; ours is a fast 20:1
#   compressor at the threshold and a clipper there: the peak never passes the threshold, and
#   audio below it is untouched
EFFECTS: dict[str, tuple[str, dict[str, float]]] = {
    "reverb": (
        "Reverb",
        dict(room_size=0.5, damping=0.5, wet_level=0.33, dry_level=0.4, width=1.0, freeze_mode=0.0),
    ),
    "compressor": (
        "Compressor",
        {"threshold_db": -18.0, "ratio": 4.0, "attack_ms": 1.0, "release_ms": 100.0},
    ),
    "limiter": ("Compressor", {"threshold_db": -1.0, "release_ms": 100.0}),
    "gain": ("Gain", {"gain_db": 0.0}),
    "highpass": ("HighpassFilter", {"cutoff_frequency_hz": 80.0, "poles": 4}),
    "lowpass": ("LowpassFilter", {"cutoff_frequency_hz": 8000.0, "poles": 4}),
    "chorus": (
        "Chorus",
        {"rate_hz": 1.0, "depth": 0.25, "centre_delay_ms": 7.0, "feedback": 0.0, "mix": 0.5},
    ),
    "delay": ("Delay", {"delay_seconds": 0.25, "feedback": 0.3, "mix": 0.3}),
}


@dataclass(frozen=True)
class Effect:
    """One entry of a chain: an effect's name and every parameter's value."""

    name: str
    params: tuple[tuple[str, float], ...]

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, **dict(self.params)}


def parse_chain(entries: Iterable[Any] | None) -> tuple[Effect, ...]:
    """A chain from config entries (mappings with `name`, or bare names); a bad entry is a
    one-line ValueError naming it and listing the valid effects or parameters."""
    if entries is None:
        return ()
    if isinstance(entries, (str, Mapping)):
        raise ValueError(
            f"effects must be a list of entries like [{{name: reverb, room_size: 0.3}}], "
            f"got {entries!r}"
        )
    chain = []
    for i, entry in enumerate(entries):
        if isinstance(entry, Effect):
            chain.append(entry)
            continue
        values = {"name": entry} if isinstance(entry, str) else dict(entry)
        name = values.pop("name", None)
        if name not in EFFECTS:
            raise ValueError(
                f"effects[{i}]: unknown effect {name!r}; valid: {', '.join(sorted(EFFECTS))}"
            )
        defaults = EFFECTS[name][1]
        unknown = sorted(set(values) - set(defaults))
        if unknown:
            raise ValueError(
                f"effects[{i}] ({name}): unknown parameter(s) {', '.join(map(str, unknown))}; "
                f"valid: {', '.join(defaults)}"
            )
        params = []
        for key, default in defaults.items():
            value = values.get(key, default)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"effects[{i}] ({name}): {key} must be a number, got {value!r}")
            params.append((key, float(value)))
        chain.append(Effect(name, tuple(params)))
    if chain:
        build(chain)  # pedalboard's own value checks, now rather than after the conversion
    return tuple(chain)


def _pedalboard() -> Any:
    try:
        import pedalboard
    except ImportError as e:
        raise ValueError(
            "effects need the pedalboard package: pip install 'rvc-lightning[effects]'"
        ) from e
    return pedalboard


def build(chain: Iterable[Effect]) -> Any:
    """The chain as a `pedalboard.Pedalboard` (a bad value is a ValueError naming its entry)."""
    pb = _pedalboard()
    plugins = []
    for i, effect in enumerate(chain):
        try:
            plugins += _plugins(pb, effect)
        except (ValueError, TypeError) as e:
            raise ValueError(f"effects[{i}] ({effect.name}): {e}") from e
    return pb.Pedalboard(plugins)


def _plugins(pb: Any, effect: Effect) -> list[Any]:
    """One entry's pedalboard plugins (why two effects are more than one: see EFFECTS)."""
    params = dict(effect.params)
    cls = getattr(pb, EFFECTS[effect.name][0])
    if effect.name in ("highpass", "lowpass"):
        poles = params.pop("poles")
        if poles != int(poles) or not 1 <= poles <= 8:
            raise ValueError(f"poles must be a whole number in 1..8, got {poles:g}")
        return [cls(**params) for _ in range(int(poles))]
    if effect.name == "limiter":
        th = params["threshold_db"]
        if th > 0:
            raise ValueError(f"threshold_db must be ≤ 0 dBFS, got {th:g}")
        return [cls(threshold_db=th, ratio=20.0, attack_ms=1.0, release_ms=params["release_ms"]),
                pb.Clipping(threshold_db=th)]  # fmt: skip
    return [cls(**params)]


class EffectChain:
    """A built chain that keeps its plugins' state between calls (reverb tails, echoes)."""

    def __init__(self, chain: Iterable[Effect], sample_rate: int):
        self.chain = tuple(chain)
        self.sample_rate = int(sample_rate)
        self.board = build(self.chain) if self.chain else None

    def __call__(self, audio: np.ndarray, reset: bool = False) -> np.ndarray:
        """Process the next stretch of audio [samples] (`reset`: forget what came before)."""
        audio = np.asarray(audio, dtype=np.float32)
        if self.board is None or len(audio) == 0:
            return audio
        return self.board(audio, self.sample_rate, reset=reset).astype(np.float32, copy=False)

    def reset(self) -> None:
        if self.board is not None:
            self.board.reset()


def apply_effects(audio: np.ndarray, sample_rate: int, chain: Iterable[Effect]) -> np.ndarray:
    """A whole recording through the chain (the empty chain returns it unchanged)."""
    return EffectChain(chain, sample_rate)(audio, reset=True)
