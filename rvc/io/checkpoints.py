"""Pretrained `{"model": ...}` files and RVC's `G_<step>.pth` / `D_<step>.pth` checkpoints.

Layout (docs/formats.md §2), shared with RVC WebUI and Applio: pretrained files are
`{"model": state_dict}`, their training checkpoints add "iteration", "optimizer" and
"learning_rate"; weight-norm tensors are named `weight_g`/`weight_v`. Our own training writes
Lightning `.ckpt` files; RVC's checkpoints are read (their "model") to start from or export.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from torch import nn

from rvc.io.safe_load import ModelFileError, load_pth
from rvc.io.weight_norm_names import from_rvc_names, to_rvc_names
from rvc.utils.atomic import save_torch


class ArchitectureMismatchError(ModelFileError):
    """A state dict's tensor names or shapes do not match the network it is loaded into."""


def _state_of(model: nn.Module | Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if isinstance(model, nn.Module):
        model = getattr(model, "module", model)  # unwrap DDP
        return model.state_dict()
    return dict(model)


def save_pretrained(path: str | os.PathLike, model: nn.Module | Mapping[str, torch.Tensor]) -> Path:
    """Atomically write a pretrained file `{"model": state_dict}` with RVC names."""
    save_torch(path, {"model": to_rvc_names(_state_of(model))})
    return Path(path)


def load_model_state(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The `model` state dict of a pretrained file or checkpoint, with parametrization names."""
    data = load_pth(path)
    if isinstance(data, dict) and isinstance(data.get("model"), Mapping):
        data = data["model"]
    elif isinstance(data, dict) and "weight" in data and "config" in data:
        raise ModelFileError(f"{path}: this is a voice model, not a checkpoint or pretrained file")
    if not isinstance(data, Mapping) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise ModelFileError(
            f"{path}: no model state dict found (expected {{'model': {{name: tensor}}}})"
        )
    return from_rvc_names(data)


def _fmt(items: Iterable[str], limit: int = 5) -> str:
    items = list(items)
    more = f" … (+{len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def check_state_dict(
    module: nn.Module,
    state: Mapping[str, torch.Tensor],
    where: str,
    ignore_missing: tuple[str, ...] = (),
) -> None:
    """Raise `ArchitectureMismatchError` naming the first missing/unexpected/mis-shaped tensors."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state and not k.startswith(ignore_missing)]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if not (missing or unexpected or shapes):
        return
    parts = []
    if shapes:
        parts.append(f"shape mismatches (file vs network): {_fmt(shapes)}")
    if missing:
        parts.append(f"missing tensors: {_fmt(missing)}")
    if unexpected:
        parts.append(f"unexpected tensors: {_fmt(unexpected)}")
    raise ArchitectureMismatchError(
        f"{where}: tensors do not match the {type(module).__name__} architecture: "
        + "; ".join(parts)
    )


def load_state_checked(
    module: nn.Module,
    state: Mapping[str, torch.Tensor],
    where: str,
    ignore_missing: tuple[str, ...] = (),
) -> nn.Module:
    """Load `state` (either naming) into `module` after `check_state_dict`; returns `module`."""
    state = from_rvc_names(state)
    check_state_dict(module, state, where, ignore_missing)
    # strict=False only for the ignored prefixes (e.g. enc_q absent from voice models)
    module.load_state_dict(state, strict=not ignore_missing)
    return module
