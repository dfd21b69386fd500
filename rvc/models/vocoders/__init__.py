"""Vocoders: the `dec` of the synthesizer, one `rvc/conf/vocoder/<x>.yaml` and one class each.

The YAML is the registry (rvc.registry): its `name` (what `.pth` metadata writes), `decoder`
and `decoder_no_f0` (class paths), pretrained table, discriminator and loss. Classes are
imported lazily, so one vocoder's dependencies don't load the others. Every vocoder takes
(x [B, inter_channels, T], f0 [B, T] Hz or None, g [B, gin, 1]) and returns a waveform
[B, 1, T * prod(upsample_rates)] (rvc.models.vocoders.base).
"""

from __future__ import annotations

import functools
import importlib

from omegaconf import DictConfig

from rvc.errors import RVCError
from rvc.models.vocoders.base import Vocoder


class VocoderError(RVCError, ValueError):
    """A vocoder option that is unknown, or incomplete (no class, no state markers)."""


def _option_files() -> tuple[tuple[str, int], ...]:
    """The vocoder YAMLs on the search path with their mtimes: the key of the cached table."""
    from rvc import registry  # lazy: reading YAML is not the models' business at import

    return tuple(
        (str(p), p.stat().st_mtime_ns)
        for root in registry.search_path()
        for p in sorted((root / "vocoder").glob("*.yaml"))
    )


@functools.lru_cache(maxsize=8)
def _options(files: tuple[tuple[str, int], ...]) -> dict[str, DictConfig]:
    # name -> merged option (read-only); detection asks for every option of every file it
    # reads, so the YAMLs are parsed once per search path and change, not once per lookup
    from rvc import registry

    table: dict[str, DictConfig] = {}
    for _, cfg in registry.options("vocoder"):
        table.setdefault(str(cfg.name), cfg)
    return table


def vocoder_option(name: str) -> DictConfig:
    """The `conf/vocoder` option whose `name` is `name` (as `.pth` files spell it); read-only."""
    table = _options(_option_files())
    if name not in table:
        raise VocoderError(f"unknown vocoder {name!r}; known: {', '.join(sorted(table))}")
    return table[name]


def vocoder_names() -> list[str]:
    """The names of every vocoder option, as `.pth` metadata and `--vocoder` spell them."""
    return sorted(_options(_option_files()))


def _import(path: str, where: str) -> type[Vocoder]:
    module, _, attr = str(path).rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError) as e:
        raise VocoderError(f"{where}: cannot import {path!r}: {e}") from e
    # the facts detection needs: without them the first .pth export would fail, an epoch later
    if not getattr(cls, "state_markers", None):
        raise VocoderError(
            f"{where}: {path} has no `state_markers` (its dec.* key prefixes), so its .pth "
            "files could not be recognised; see rvc.models.vocoders.base.Vocoder"
        )
    return cls


def vocoder_classes(name: str) -> tuple[type[Vocoder], type[Vocoder] | None]:
    """(pitch-guided class, no-F0 class or None) of a vocoder name."""
    cfg = vocoder_option(name)
    where = f"vocoder {name!r}"
    no_f0 = cfg.get("decoder_no_f0")
    return _import(cfg.decoder, where), (_import(no_f0, where) if no_f0 else None)


def vocoder_class(name: str, use_f0: bool = True) -> type[Vocoder]:
    """The decoder class of a vocoder name for an F0 or no-F0 model."""
    f0_cls, no_f0_cls = vocoder_classes(name)
    if use_f0:
        return f0_cls
    if no_f0_cls is None:
        with_no_f0 = [n for n in vocoder_names() if vocoder_option(n).get("decoder_no_f0")]
        raise VocoderError(
            f"vocoder {name!r} needs F0; only {', '.join(with_no_f0) or 'none'} has a no-F0 variant"
        )
    return no_f0_cls
