"""Training checkpoints (`G_<step>.pth`, `D_<step>.pth`) and pretrained `{"model": ...}` files.

Layout (FORMATS.md §2), shared with RVC WebUI and Applio so checkpoints move between tools:
`{"model": state_dict, "iteration": epoch, "optimizer": state, "learning_rate": lr}`, with the
weight-norm tensors named `weight_g`/`weight_v`. Pretrained files are `{"model": state_dict}`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rvc.io.safe_load import ModelFileError, load_pth
from rvc.io.weight_norm_names import from_rvc_names, to_rvc_names
from rvc.utils.atomic import save_torch


class ArchitectureMismatchError(ModelFileError):
    """A state dict's tensor names or shapes do not match the network it is loaded into."""


@dataclass
class Checkpoint:
    """A loaded training checkpoint; `model` uses parametrization weight-norm names."""

    model: dict[str, torch.Tensor]
    iteration: int = 0
    optimizer: dict[str, Any] | None = None
    learning_rate: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # any other keys (e.g. Applio's scaler)


def _state_of(model: nn.Module | Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if isinstance(model, nn.Module):
        model = getattr(model, "module", model)  # unwrap DDP
        return model.state_dict()
    return dict(model)


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module | Mapping[str, torch.Tensor],
    iteration: int,
    optimizer: torch.optim.Optimizer | Mapping[str, Any] | None = None,
    learning_rate: float | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Atomically write a `G_*.pth`/`D_*.pth` checkpoint in RVC's layout."""
    opt = optimizer.state_dict() if isinstance(optimizer, torch.optim.Optimizer) else optimizer
    data: dict[str, Any] = {
        "model": to_rvc_names(_state_of(model)),
        "iteration": int(iteration),
        "optimizer": dict(opt) if opt is not None else {},
        "learning_rate": learning_rate,
    }
    data.update(extra or {})
    save_torch(path, data)
    return Path(path)


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a `G_*.pth`/`D_*.pth` checkpoint (ours, RVC's or Applio's)."""
    data = load_pth(path)
    if not isinstance(data, dict) or not isinstance(data.get("model"), Mapping):
        raise ModelFileError(f"{path}: not a training checkpoint (no 'model' state dict)")
    rest = {
        k: v
        for k, v in data.items()
        if k not in ("model", "iteration", "optimizer", "learning_rate")
    }
    lr = data.get("learning_rate")
    return Checkpoint(
        model=from_rvc_names(data["model"]),
        iteration=int(data.get("iteration", 0) or 0),
        optimizer=data.get("optimizer") or None,
        learning_rate=float(lr) if lr is not None else None,
        extra=rest,
    )


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
