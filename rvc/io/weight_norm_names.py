"""Map weight-norm tensor names between RVC files and torch parametrizations.

RVC files (voice models, G/D checkpoints, pretrained) use the names of the old
`torch.nn.utils.weight_norm`: `<conv>.weight_g` (magnitude) and `<conv>.weight_v` (direction).
Our networks use `torch.nn.utils.parametrizations.weight_norm`, whose state dict names the same
tensors `<conv>.parametrizations.weight.original0` / `.original1`. Values are identical.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, TypeVar

RVC_G = ".weight_g"
RVC_V = ".weight_v"
PARAM_G = ".parametrizations.weight.original0"
PARAM_V = ".parametrizations.weight.original1"

V = TypeVar("V")


def _swap_suffix(key: str, old: str, new: str) -> str:
    # only the key's tail: a module named e.g. "weight_gate" must keep its name
    return key[: -len(old)] + new if key.endswith(old) else key


def to_rvc_name(key: str) -> str:
    """`a.parametrizations.weight.original0` → `a.weight_g` (original1 → weight_v)."""
    return _swap_suffix(_swap_suffix(key, PARAM_G, RVC_G), PARAM_V, RVC_V)


def from_rvc_name(key: str) -> str:
    """`a.weight_g` → `a.parametrizations.weight.original0` (weight_v → original1)."""
    return _swap_suffix(_swap_suffix(key, RVC_G, PARAM_G), RVC_V, PARAM_V)


def _rename(state: Mapping[str, V], fn: Any) -> OrderedDict[str, V]:
    out: OrderedDict[str, V] = OrderedDict()
    for key, value in state.items():
        new = fn(key) if isinstance(key, str) else key
        if new in out:
            raise ValueError(f"state dict has both '{key}' and a tensor already named '{new}'")
        out[new] = value
    return out


def to_rvc_names(state: Mapping[str, V]) -> OrderedDict[str, V]:
    """A state dict with RVC's `weight_g`/`weight_v` names (order kept, values shared)."""
    return _rename(state, to_rvc_name)


def from_rvc_names(state: Mapping[str, V]) -> OrderedDict[str, V]:
    """A state dict with parametrization `original0`/`original1` names (order kept)."""
    return _rename(state, from_rvc_name)
