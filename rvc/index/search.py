"""Reading an `.index` and retrieving training features for inference (docs/formats.md §6–7)."""

from __future__ import annotations

import os
import re
import weakref
from pathlib import Path
from typing import TypeVar

import faiss
import numpy as np

from rvc.errors import RVCError
from rvc.index.build import index_file_name

ArrayT = TypeVar("ArrayT")

# index -> (ntotal, its vectors): RVC's `big_npy`, read out once per index
_VECTORS: weakref.WeakKeyDictionary[faiss.Index, tuple[int, np.ndarray]] = (
    weakref.WeakKeyDictionary()
)


class IndexFileError(RVCError, ValueError):
    """An `.index` file that is missing, unreadable, empty, or does not fit the model."""


def _faiss_reason(e: BaseException) -> str:
    """The useful tail of a faiss C++ error (drops the function signature and source line)."""
    text = " ".join(str(e).split())
    m = re.search(r"\.cpp:\d+: (?:Error: '.*?' failed: )?(.*)$", text)
    return m.group(1) if m else text


def read_index(path: str | os.PathLike, dim: int | None = None) -> faiss.Index:
    """Read a faiss index; IndexFileError naming the file when it is unusable (or not `dim`-wide)."""
    path = Path(path)
    if not path.exists():
        raise IndexFileError(f"{path}: no such index file")
    if not path.is_file():
        raise IndexFileError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise IndexFileError(f"{path}: empty file, not a faiss index")
    try:
        index = faiss.read_index(str(path))
    except (RuntimeError, MemoryError) as e:  # faiss raises RuntimeError for any bad file
        raise IndexFileError(
            f"{path}: not a faiss index, or truncated/corrupt ({_faiss_reason(e)})"
        ) from e
    if index.ntotal == 0:
        # the RVC WebUI also writes trained_*.index files: trained, but without vectors
        raise IndexFileError(
            f"{path}: the index holds no vectors (a trained_*.index? use the added_*.index)"
        )
    if dim is not None and int(index.d) != int(dim):
        raise IndexFileError(
            f"{path}: the index holds {index.d}-dim features but the model uses {dim}-dim "
            f"features (built with another embedder or model version)"
        )
    return index


def _legacy_pattern(stem: str) -> re.Pattern[str]:
    # RVC WebUI: added_IVF<n>_Flat_nprobe_1_<name>_v2.index; older Applio: added_<name>_v2.index
    return re.compile(rf"added_(?:IVF\d+_Flat_nprobe_\d+_)?{re.escape(stem)}(?:_v\d+)?\.index")


def find_index(voice_model_path: str | os.PathLike) -> Path | None:
    """The `.index` beside a voice model: `<stem>.index`, else one unambiguous `added_*.index`."""
    model = Path(voice_model_path)
    ours = model.with_name(index_file_name(model.stem))
    if ours.is_file():
        return ours
    candidates = sorted(p for p in model.parent.glob("added_*.index") if p.is_file())
    pattern = _legacy_pattern(model.stem)
    named = [p for p in candidates if pattern.fullmatch(p.name)]
    if len(named) == 1:
        return named[0]
    if not named and len(candidates) == 1:
        return candidates[0]
    return None  # none, or several and none (or more than one) carries the model's name


def index_vectors(index: faiss.Index) -> np.ndarray:
    """All vectors of `index` as float32 [ntotal, dim], read out once and cached per index."""
    cached = _VECTORS.get(index)
    if cached is None or cached[0] != index.ntotal:
        cached = (int(index.ntotal), index.reconstruct_n(0, index.ntotal))
        _VECTORS[index] = cached
    return cached[1]


def neighbour_weights(distances: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """RVC's weights `(1 / distance)²`, normalised per row, float64 [T, k]; 0 for missing ids."""
    d = distances.astype(np.float64)
    valid = ids >= 0  # faiss pads with -1 when a probed list holds fewer than k vectors
    exact = valid & (d <= 0)
    w = np.zeros_like(d)
    far = valid & ~exact
    w[far] = np.square(1.0 / d[far])
    # an exact match is the limit d -> 0: all the weight on it (RVC's 1/0 would give NaN)
    rows = exact.any(axis=1)
    w[rows] = exact[rows]
    total = w.sum(axis=1, keepdims=True)
    return np.divide(w, total, out=np.zeros_like(w), where=total > 0)


def retrieve(index: faiss.Index, feats: np.ndarray, k: int = 8) -> np.ndarray:
    """Weighted mean of the k nearest training vectors of each frame, float32 [T, dim].

    faiss's L2 indexes return squared distances; like RVC we weight by their inverse
    square. A frame without any neighbour (an empty probed list) is returned unchanged.
    """
    x = np.ascontiguousarray(feats, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != index.d:
        raise ValueError(
            f"features of shape {tuple(np.shape(feats))} do not fit a {index.d}-dim index"
        )
    if len(x) == 0 or index.ntotal == 0:
        return x.copy()
    vectors = index_vectors(index)
    distances, ids = index.search(x, max(1, min(int(k), int(index.ntotal))))
    w = neighbour_weights(distances, ids)
    out = np.zeros(x.shape, dtype=np.float64)
    # one neighbour rank at a time: RVC's vectors[ids] would hold T·k·dim floats at once
    for j in range(ids.shape[1]):
        out += w[:, j : j + 1] * vectors[np.maximum(ids[:, j], 0)]
    lonely = w.sum(axis=1) == 0
    out[lonely] = x[lonely]
    return out.astype(np.float32)


def blend(original: ArrayT, retrieved: ArrayT, index_rate: float) -> ArrayT:
    """`index_rate · retrieved + (1 − index_rate) · original` (numpy arrays or torch tensors)."""
    if not 0.0 <= index_rate <= 1.0:
        raise ValueError(f"index_rate must be in [0, 1], got {index_rate}")
    if tuple(original.shape) != tuple(retrieved.shape):
        raise ValueError(
            f"retrieved features {tuple(retrieved.shape)} do not match {tuple(original.shape)}"
        )
    return index_rate * retrieved + (1.0 - index_rate) * original
