"""Pick a torch device from a config string; say what CPU this is."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import torch

from rvc.errors import RVCError


class DeviceConfigError(RVCError, ValueError):
    """A `device.accelerator` no stage can run on; the message names the choices."""


def resolve_device(name: str | None = "auto") -> torch.device:
    """'auto' → cuda if available else cpu; otherwise the named device ('cpu', 'cuda', 'cuda:1')."""
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device '{name}' asked for, but CUDA is not available here")
    return dev


def torch_device_type(accelerator: str | None) -> str:
    """The torch device type of a `device.accelerator` (Lightning's names): cpu -> "cpu",
    gpu/cuda -> "cuda", mps -> "mps", auto -> "cuda" where CUDA is available, else "cpu".
    The one mapping: extraction, training's precision plugin, conversion and evaluation."""
    acc = str(accelerator or "auto").lower()
    if acc == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    kind = {"cpu": "cpu", "gpu": "cuda", "cuda": "cuda", "mps": "mps"}.get(acc)
    if kind is None:
        raise DeviceConfigError(
            f"device.accelerator must be cpu, gpu, mps or auto, not '{accelerator}'"
        )
    return kind


def extract_devices(accelerator: str, devices: Any) -> list[str]:
    """Device strings for extraction workers from the `device` group (Lightning-style fields).

    `devices` is a count (1, 2 …), a list of GPU indices ([0, 2]) or explicit strings.
    """
    kind = torch_device_type(accelerator)
    if kind == "cpu":
        n = devices if isinstance(devices, int) else len(list(devices))
        return ["cpu"] * max(n, 1)
    if kind != "cuda":
        raise DeviceConfigError(
            f"extraction runs on cpu or gpu, not device.accelerator={accelerator}"
        )
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


PRECISIONS = ("fp32", "bf16", "fp16", "auto")


def fast_bf16(device: str | torch.device) -> bool:
    """Whether bf16 pays off here: an Ampere or newer GPU, or a CPU with AMX or AVX-512-bf16
    (elsewhere CPU bf16 is emulated and slower than fp32)."""
    dev = torch.device(device)
    if dev.type == "cuda":  # Ampere or newer: older GPUs only emulate bf16
        return torch.cuda.is_available() and torch.cuda.get_device_capability(dev)[0] >= 8
    cpu = torch.cpu
    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")  # private: may move
    return dev.type == "cpu" and any(getattr(cpu, c, lambda: False)() for c in checks)


def cpu_description(cpuinfo: str | None = None) -> str:
    """The CPU's model name and its bf16 kind, for benchmark rows: a figure or a bf16 tolerance
    from an AMX / AVX-512-bf16 CPU (real bf16) says little about an AVX2 one (emulated)."""
    if cpuinfo is None:
        try:  # Linux; elsewhere only what platform knows
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    lines = cpuinfo.splitlines()
    name = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), "")
    flags = next(
        (set(ln.split(":", 1)[1].split()) for ln in lines if ln.startswith("flags")), set()
    )
    kinds = [k for f, k in (("amx_bf16", "AMX"), ("avx512_bf16", "AVX-512-bf16")) if f in flags]
    if kinds:
        isa = ", ".join(kinds) + ": real bf16"
    elif flags:
        isa = ("AVX2" if "avx2" in flags else "no AVX2") + ", no AVX-512-bf16/AMX: bf16 emulated"
    else:
        isa = "ISA unknown"
    return f"{name or platform.processor() or platform.machine()} ({isa})"


def inference_dtype(precision: str, device: str | torch.device) -> torch.dtype | None:
    """The dtype the inference networks (F0, content, synthesizer) are cast to once for
    `device.inference_precision` (None: plain fp32). `auto` is bf16 where `fast_bf16`, else fp32."""
    if precision not in PRECISIONS:
        raise ValueError(
            f"device.inference_precision must be one of {list(PRECISIONS)}, not '{precision}'"
        )
    if precision == "auto":
        precision = "bf16" if fast_bf16(device) else "fp32"
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def compile_backend(value: bool | str | None) -> str | None:
    """`device.compile` -> a torch.compile backend: false/None -> None (eager), true ->
    "inductor", any other string -> that backend (e.g. "aot_eager", "eager")."""
    if value is None or isinstance(value, bool):
        return "inductor" if value else None
    text = str(value).strip()
    if text.lower() in ("", "false", "none", "null"):
        return None
    return "inductor" if text.lower() == "true" else text
