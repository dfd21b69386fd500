"""Load untrusted `.pth` files without running code from them.

Every `.pth` we read goes through `load_pth`, which only uses `torch.load(weights_only=True)`:
the restricted unpickler builds tensors, containers and plain values and refuses anything
else (e.g. a `__reduce__` that would call `os.system`) before it can run.
"""

from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path
from typing import Any

import torch

from rvc.errors import RVCError


class ModelFileError(RVCError, ValueError):
    """A model file cannot be used; the message names the file and the problem."""


class UnsafeModelFileError(ModelFileError):
    """The file holds pickled objects beyond tensors and plain data (possibly malicious)."""


class CorruptModelFileError(ModelFileError):
    """The file is truncated, damaged, or not a torch file at all."""


def _numpy_safe_globals() -> list[Any]:
    """Numpy scalar/dtype constructors: plain data some RVC tools leave in metadata."""
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is a dependency
        return []
    core = getattr(np, "_core", None) or np.core
    out: list[Any] = [core.multiarray.scalar, np.dtype]
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        out += [
            getattr(dtypes, n)
            for n in ("Float64DType", "Float32DType", "Int64DType", "Int32DType", "BoolDType")
            if hasattr(dtypes, n)
        ]
    return out


def _torch_reason(message: str) -> str:
    """The informative line of torch's weights-only refusal (it wraps it in boilerplate)."""
    boiler = ("weights only load failed", "please file an issue", "check the documentation")
    for line in message.splitlines():
        line = line.strip()
        if line and not line.lower().startswith(boiler):
            return line.removeprefix("WeightsUnpickler error:").strip() or line
    return "it contains objects that are not plain tensors or data"


def load_pth(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """Load a `.pth` with `torch.load(weights_only=True)`; clear errors for bad files."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    if path.stat().st_size == 0:
        raise CorruptModelFileError(f"{path}: the file is empty")
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()), warnings.catch_warnings():
            # bare pickles of protocol > 2 warn before failing; the error says it all
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        msg = str(e)
        if "weights only load failed" in msg.lower() and "global" in msg.lower():
            raise UnsafeModelFileError(
                f"{path}: refused to load: {_torch_reason(msg).rstrip('.')}. Only tensors and plain data "
                "are accepted; a file that needs more could run code when opened. Do not open "
                "it with weights_only=False unless you fully trust where it came from."
            ) from None
        raise CorruptModelFileError(
            f"{path}: not a readable torch file ({_torch_reason(msg)})"
        ) from e
    except Exception as e:  # the restricted unpickler ran no code: any failure means a bad file
        raise CorruptModelFileError(
            f"{path}: truncated, damaged or not a torch .pth file "
            f"({type(e).__name__}: {_first_line(str(e))})"
        ) from e


def _first_line(text: str) -> str:
    text = text.strip()
    return text.splitlines()[0][:200] if text else "no details"
