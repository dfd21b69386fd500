"""Pick a torch device from a config string."""

from __future__ import annotations

import torch


def resolve_device(name: str | None = "auto") -> torch.device:
    """'auto' → cuda if available else cpu; otherwise the named device ('cpu', 'cuda', 'cuda:1')."""
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device '{name}' asked for, but CUDA is not available here")
    return dev
