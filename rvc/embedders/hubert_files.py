"""Reading a HuBERT checkpoint folder's files: `config.json` and the weights (`.safetensors` or
a torch `.bin`, weights_only), with key names normalised; errors name the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from rvc.errors import RVCError


class EmbedderConfigError(RVCError, ValueError):
    """An embedder checkpoint cannot serve the asked version/dim; the message names the folder."""


def read_config(path: Path) -> Any:
    """Parse a HuBERT `config.json` into a `HubertConfig`."""
    from transformers import HubertConfig

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise EmbedderConfigError(f"{path}: not a readable JSON config ({e})") from e
    if not isinstance(data, dict):
        raise EmbedderConfigError(f"{path}: expected a JSON object")
    if data.get("model_type", "hubert") != "hubert":
        raise EmbedderConfigError(
            f"{path}: model_type is {data['model_type']!r}; only HuBERT checkpoints are supported"
        )
    return HubertConfig.from_dict(data)


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """Load a state dict from `.safetensors` or a torch `.bin` (weights_only)."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as e:  # safetensors raises its own error types
            raise EmbedderConfigError(f"{path}: not a readable safetensors file ({e})") from e
    from rvc.io.safe_load import load_pth

    state = load_pth(path)
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict):
        raise EmbedderConfigError(f"{path}: expected a state dict, got {type(state).__name__}")
    return state


def split_state(state: dict[str, torch.Tensor]) -> tuple[dict, dict]:
    """Normalise key names; return (HubertModel state, final_proj state)."""
    from rvc.io.weight_norm_names import from_rvc_name

    # files saved from a model wrapping HubertModel (e.g. HubertForCTC) prefix "hubert."
    if not any(k.startswith("feature_extractor.") for k in state):
        state = {k.removeprefix("hubert."): v for k, v in state.items()}
    model, proj = {}, {}
    for key, value in state.items():
        if key.startswith("final_proj."):
            proj[key.removeprefix("final_proj.")] = value
        else:  # older transformers saved the positional conv's weight norm as weight_g/weight_v
            model[from_rvc_name(key)] = value
    return model, proj
