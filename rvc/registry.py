"""The registry of every swappable family: the option files of `rvc/conf/<group>/`.

Each config group (vocoder, f0, embedder, index, device, model, ...) is a folder of YAML files,
one per option, shipped inside the package (the entry points find them through Hydra's
`pkg://rvc.conf`). Code that looks an option up by name (a `.pth`'s vocoder, `f0="rmvpe"` in
`load_converter`, an index kind) reads the same files here, so an option exists once: its YAML
and its class. More folders can be searched: Hydra's `hydra.searchpath` inside an app, or
`add_search_path()` from Python (what a project-local option, or the toy-option tests, use).

An option may start with `defaults: [_base, _self_]` (or any list of options of its own group):
those files are merged first, so an option states only what differs. Names starting with `_`
are shared bases, not options.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from rvc.errors import RVCError

PACKAGE_CONF = "rvc.conf"
_EXTRA: list[Path] = []


class RegistryError(RVCError, ValueError):
    """No option of that name in a group; the message lists the known ones."""


def add_search_path(path: str | os.PathLike) -> None:
    """Search `path/<group>/<name>.yaml` too (first), as Hydra's `hydra.searchpath` does."""
    p = Path(path).resolve()
    if p not in _EXTRA:
        _EXTRA.insert(0, p)


def package_conf() -> Path:
    """The package's own config folder (inside site-packages once installed)."""
    return Path(str(files(PACKAGE_CONF)))


def _hydra_dirs() -> list[Path]:
    """File folders of a running Hydra app's search path (its `hydra.searchpath`)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        if not HydraConfig.initialized():
            return []
        sources = HydraConfig.get().runtime.config_sources
    except Exception:  # no Hydra app, or an older Hydra: the package and added paths only
        return []
    return [Path(s.path) for s in sources if s.schema == "file" and s.path]


def search_path() -> list[Path]:
    """Folders searched, first wins: added paths, the app's file sources, then the package."""
    seen: list[Path] = []
    for p in [*_EXTRA, *_hydra_dirs(), package_conf()]:
        if p.is_dir() and p not in seen:
            seen.append(p)
    return seen


def _file(group: str, name: str) -> Path | None:
    stem = name.replace("-", "_")
    for root in search_path():
        path = root / group / f"{stem}.yaml"
        if path.is_file():
            return path
    return None


def names(group: str) -> list[str]:
    """The options of a group, sorted (shared `_bases` left out)."""
    found = {
        p.stem
        for root in search_path()
        if (root / group).is_dir()
        for p in (root / group).glob("*.yaml")
        if not p.stem.startswith("_")
    }
    return sorted(found)


def load(group: str, name: str) -> DictConfig:
    """The option `group/name` merged over its own-group defaults, unresolved (interpolations
    to other groups, like `${model.sample_rate}`, stay for the caller's config to fill)."""
    path = _file(group, str(name))
    if path is None:
        raise RegistryError(f"no {group} named {name!r}; known: {', '.join(names(group))}")
    node = OmegaConf.load(path)
    defaults = node.pop("defaults", None) if isinstance(node, DictConfig) else None
    if not defaults:
        return node
    parts: list[Any] = []
    for entry in defaults:
        if entry == "_self_":
            parts.append(node)
        elif isinstance(entry, str):
            parts.append(load(group, entry))
        else:
            raise RegistryError(f"{path}: only same-group names are supported in defaults")
    if "_self_" not in defaults:
        parts.append(node)
    return OmegaConf.merge(*parts)


def options(group: str) -> Iterator[tuple[str, DictConfig]]:
    """Every option of a group with its merged config."""
    for name in names(group):
        yield name, load(group, name)


def find(group: str, key: str, value: Any) -> tuple[str, DictConfig]:
    """The option whose `key` equals `value` (e.g. the vocoder whose `name` is "RefineGAN")."""
    seen = []
    for name, cfg in options(group):
        v = OmegaConf.select(cfg, key, default=None, throw_on_missing=False)
        if v == value:
            return name, cfg
        if v is not None:
            seen.append(str(v))
    raise RegistryError(f"no {group} with {key} {value!r}; known: {', '.join(seen)}")


def option_file(group: str, name: str) -> Path:
    """The YAML file of the option `group/name` (the first on the search path), for messages."""
    path = _file(group, str(name))
    if path is None:
        raise RegistryError(f"no {group} named {name!r}; known: {', '.join(names(group))}")
    return path


def build(cfg: Any, device: str = "cpu", group: str | None = None, **overrides: Any) -> Any:
    """An option ready to use, for every family: `cfg` a config node (with `_target_`) or, with
    `group`, an option name; instantiated on `device` (with `overrides`), `load()`ed (a missing
    weight file fails here, not at the first slice), then moved `to(device)`. Extraction and
    conversion build their F0 estimators and embedders through it."""
    from hydra.utils import instantiate

    if isinstance(cfg, str):
        if group is None:
            raise RegistryError(f"build({cfg!r}): a name needs its group (f0, embedder, ...)")
        cfg = load(group, cfg)
    obj = instantiate(cfg, device=device, **overrides)
    if callable(getattr(obj, "load", None)):
        obj.load()
    return obj.to(device) if callable(getattr(obj, "to", None)) else obj


def groups() -> list[str]:
    """The config groups (folders of options) on the search path, sorted; Hydra's own left out."""
    found = {
        d.name
        for root in search_path()
        for d in root.iterdir()
        if d.is_dir()
        and d.name != "hydra"
        and not d.name.startswith(("_", "."))
        and any(d.glob("*.yaml"))
    }
    return sorted(found)


def options_help() -> str:
    """`group: option, option, …` lines for `--help` (Hydra's own list shows the `_bases` too)."""
    return "\n".join(f"{g}: {', '.join(names(g))}" for g in groups())
