"""Base (pretrained) G/D files in the layout the RVC WebUI and Applio load as custom pretrained,
and the model card written beside them (docs/base_models.md).

What their loaders read (Applio `rvc/train/train.py` at b9c0ccb1, the WebUI's `train/train.py`):
`torch.load(path)["model"]` into a freshly built generator / discriminator with a strict
`load_state_dict`, nothing else from the file. Applio loads with `weights_only=True` and first
sizes its `emb_g` from the file's `emb_g.weight` rows; the WebUI builds 109 rows from its config
JSON, so a base with more speakers loads in Applio only. Applio's UI lists the `.pth` files under
`rvc/models/pretraineds/custom/` (any depth) whose name contains "G" (generator) or "D"
(discriminator): the published names (`f0G40k.pth`, `f0D40k.pth`) fit both, one folder per base.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rvc.formats import file_sha256, khz
from rvc.io.weight_norm_names import to_rvc_names
from rvc.utils import atomic

RVC_SPEAKERS = 109  # emb_g rows of every published pretrained and of the WebUI's configs
CARD = "model_card.json"
CARD_FORMAT = 1


@dataclass(frozen=True)
class BaseFiles:
    """A written base model: its folder, G and D files and the card."""

    folder: Path
    generator: Path
    discriminator: Path
    card: Path


def base_file_names(sample_rate: int, use_f0: bool = True) -> tuple[str, str]:
    """The published names: ("f0G40k.pth", "f0D40k.pth"); no-F0 models drop the "f0"."""
    prefix = "f0" if use_f0 else ""
    return f"{prefix}G{khz(int(sample_rate))}.pth", f"{prefix}D{khz(int(sample_rate))}.pth"


def base_state(
    model: nn.Module | Mapping[str, torch.Tensor], half: bool = False
) -> dict[str, torch.Tensor]:
    """A network's state dict as a pretrained file holds it: on the CPU, RVC's weight-norm names,
    float tensors in fp32 (or fp16, as the published files: half the size)."""
    if isinstance(model, nn.Module):
        model = getattr(model, "module", model).state_dict()  # unwrap DDP
    dtype = torch.float16 if half else torch.float32
    out = {}
    for k, v in to_rvc_names(model).items():
        v = v.detach().cpu()
        out[k] = v.to(dtype) if v.is_floating_point() else v
    return out


def save_base_model(
    folder: str | os.PathLike,
    generator: nn.Module,
    discriminator: nn.Module,
    card: Mapping[str, Any],
    *,
    sample_rate: int,
    use_f0: bool = True,
    half: bool = False,
) -> BaseFiles:
    """Write `{"model": state_dict}` G (with enc_q) and D files and the card, each atomically;
    the card last, with the files' sha256, so a card always describes whole files."""
    folder = Path(folder)
    g_name, d_name = base_file_names(sample_rate, use_f0)
    files = {}
    for name, net in ((g_name, generator), (d_name, discriminator)):
        state = base_state(net, half)
        atomic.save_torch(folder / name, {"model": state})
        files[name] = {
            "sha256": file_sha256(folder / name),
            "tensors": len(state),
            "parameters": sum(v.numel() for v in state.values()),
        }
    data = {
        "format": CARD_FORMAT,
        **card,
        "precision": "fp16" if half else "fp32",
        "generator": g_name,
        "discriminator": d_name,
        "files": files,
    }
    atomic.write_json(folder / CARD, data)
    return BaseFiles(folder, folder / g_name, folder / d_name, folder / CARD)
