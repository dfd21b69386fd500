"""The format of `fixtures/step_reference_<vocoder>.npz`, shared by the script that writes it
(`fixtures/make_step_reference.py`) and the test that reads it: strings as bytes, state dicts
packed into one float16 vector, the batch as the step sees it."""

from __future__ import annotations

import json

import numpy as np
import torch

BATCH_KEYS = ("phone", "phone_lengths", "pitch", "pitchf", "sid")


def text(s: str) -> np.ndarray:
    """A string as a 0-d bytes array (numpy's str arrays take 4 bytes a character)."""
    return np.array(s.encode())


def read_text(a) -> str:
    return np.asarray(a).item().decode()


def pack_state(prefix: str, state: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """A state dict as one float16 vector plus a JSON index [(key, shape)]: one zip entry
    instead of hundreds (their headers would outweigh the tiny tensors)."""
    index = [(k, list(v.shape)) for k, v in state.items()]
    flat = torch.cat([v.detach().flatten().half() for v in state.values()])
    return {f"{prefix}_weights": flat.numpy(), f"{prefix}_index": text(json.dumps(index))}


def unpack_state(arrays, prefix: str) -> dict[str, torch.Tensor]:
    """`pack_state` undone: {key: float32 tensor}."""
    flat = torch.from_numpy(np.asarray(arrays[f"{prefix}_weights"])).float()
    out, at = {}, 0
    for key, shape in json.loads(read_text(arrays[f"{prefix}_index"])):
        n = int(np.prod(shape))
        out[key] = flat[at : at + n].reshape(shape).clone()
        at += n
    assert at == flat.numel(), f"{prefix}: {flat.numel() - at} values not in the index"
    return out


def batch_tensors(arrays) -> dict[str, torch.Tensor]:
    """The stored batch as the step sees it: phone in fp32, wave = PCM / 32768."""
    batch = {k: torch.from_numpy(np.asarray(arrays[k])) for k in BATCH_KEYS if k in arrays}
    batch["phone"] = batch["phone"].float()
    batch["wave"] = torch.from_numpy(np.asarray(arrays["wave_pcm"])).float() / 32768
    return batch
