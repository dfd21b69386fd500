"""Pick a torch device from a config string."""

from __future__ import annotations

from typing import Any

import torch


def resolve_device(name: str | None = "auto") -> torch.device:
    """'auto' → cuda if available else cpu; otherwise the named device ('cpu', 'cuda', 'cuda:1')."""
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device '{name}' asked for, but CUDA is not available here")
    return dev


def extract_devices(accelerator: str, devices: Any) -> list[str]:
    """Device strings for extraction workers from the `device` group (Lightning-style fields).

    `devices` is a count (1, 2 …), a list of GPU indices ([0, 2]) or explicit strings.
    """
    if accelerator == "auto":
        accelerator = "gpu" if torch.cuda.is_available() else "cpu"
    if accelerator == "cpu":
        n = devices if isinstance(devices, int) else len(list(devices))
        return ["cpu"] * max(n, 1)
    if accelerator not in ("gpu", "cuda"):
        raise ValueError(f"device.accelerator must be cpu, gpu or auto, not '{accelerator}'")
    if not torch.cuda.is_available():
        raise RuntimeError("device.accelerator=gpu asked for, but CUDA is not available here")
    if isinstance(devices, int):
        ids = (
            list(range(torch.cuda.device_count()))[:devices]
            if devices > 0
            else list(range(torch.cuda.device_count()))
        )
    else:
        ids = list(devices)
    return [d if isinstance(d, str) else f"cuda:{d}" for d in ids]
