"""Building the retrieval `.index` (docs/formats.md §6): faiss IVF-Flat over training features.

The index kinds are the options of `rvc/conf/index/` (the registry), each a YAML naming its
builder class: `FaissIndex` indexes every frame, `KMeansIndex` first reduces them to
MiniBatchKMeans centres, `AutoIndex` reduces only large sets (> 200 000 frames), as the RVC
WebUI and Applio do. A new kind is a subclass of `IndexBuilder` and a YAML (`make_builder`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from rvc import registry
from rvc.data.store import FeatureStore
from rvc.errors import RVCError
from rvc.utils.atomic import atomic_path


class IndexKindError(RVCError, ValueError):
    """An index kind whose YAML does not build an `IndexBuilder`."""


def index_factory_string(n_vectors: int) -> tuple[str, int]:
    """faiss factory string and IVF list count for `n_vectors` (RVC's rule, at least one list)."""
    n_ivf = max(1, min(int(16 * np.sqrt(n_vectors)), n_vectors // 39))
    return f"IVF{n_ivf},Flat", n_ivf


def index_file_name(model_name: str) -> str:
    """Our index file name (and Applio's today): `<model_name>.index`."""
    return f"{model_name}.index"


def check_features(features: np.ndarray) -> np.ndarray:
    """Features as contiguous float32 [N, dim]; ValueError when empty, not 2-D or not finite."""
    x = np.ascontiguousarray(features, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] == 0:
        raise ValueError(f"features must be [frames, dim], got shape {tuple(features.shape)}")
    if len(x) == 0:
        raise ValueError("no feature frames to index")
    if not np.isfinite(x).all():
        bad = int((~np.isfinite(x).all(axis=1)).sum())
        raise ValueError(f"{bad} of {len(x)} feature frames hold NaN or inf values")
    return x


class IndexBuilder:
    """Shuffle, (optionally) reduce, train IVF-Flat with nprobe 1, add in batches."""

    kind = "faiss"

    def __init__(self, batch_size: int = 8192, seed: int = 0):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = int(batch_size)
        self.seed = int(seed)

    def reduce(self, x: np.ndarray) -> np.ndarray:
        """Vectors to index (the base class keeps them all)."""
        return x

    def build(self, features: np.ndarray) -> faiss.Index:
        """A trained IVF-Flat index holding `features` [N, dim] (or their centres)."""
        x = check_features(features)
        # RVC shuffles before training; seeded here so a rebuild gives the same file
        x = x[np.random.default_rng(self.seed).permutation(len(x))]
        x = np.ascontiguousarray(self.reduce(x), dtype=np.float32)
        factory, _ = index_factory_string(len(x))
        index = faiss.index_factory(x.shape[1], factory)
        ivf = faiss.extract_index_ivf(index)
        ivf.nprobe = 1
        # only silences faiss's "please provide at least 39 points" for sets under 39 frames
        ivf.cp.min_points_per_centroid = 1
        index.train(x)
        for i in range(0, len(x), self.batch_size):
            index.add(x[i : i + self.batch_size])
        return index


class FaissIndex(IndexBuilder):
    """Index every feature frame (no reduction)."""

    kind = "faiss"


class KMeansIndex(IndexBuilder):
    """Always reduce the frames to `kmeans_centres` MiniBatchKMeans centres first."""

    kind = "kmeans"

    def __init__(self, kmeans_centres: int = 10_000, batch_size: int = 8192, seed: int = 0):
        super().__init__(batch_size=batch_size, seed=seed)
        if kmeans_centres < 1:
            raise ValueError(f"kmeans_centres must be >= 1, got {kmeans_centres}")
        self.kmeans_centres = int(kmeans_centres)

    def should_reduce(self, n: int) -> bool:
        """Whether `n` frames are reduced to centres."""
        # fewer frames than centres: the frames themselves are the best "centres"
        return n > self.kmeans_centres

    def reduce(self, x: np.ndarray) -> np.ndarray:
        """MiniBatchKMeans centres of `x` (or `x` itself when it is small)."""
        if not self.should_reduce(len(x)):
            return x
        from sklearn.cluster import MiniBatchKMeans

        km = MiniBatchKMeans(
            n_clusters=self.kmeans_centres,
            batch_size=256 * (os.cpu_count() or 1),  # RVC/Applio's choice
            compute_labels=False,
            init="random",
            random_state=self.seed,
        )
        return km.fit(x).cluster_centers_.astype(np.float32)


class AutoIndex(KMeansIndex):
    """Reduce to `kmeans_centres` centres only when there are more than `kmeans_threshold` frames."""

    kind = "auto"

    def __init__(
        self,
        kmeans_threshold: int = 200_000,
        kmeans_centres: int = 10_000,
        batch_size: int = 8192,
        seed: int = 0,
    ):
        super().__init__(kmeans_centres=kmeans_centres, batch_size=batch_size, seed=seed)
        self.kmeans_threshold = int(kmeans_threshold)

    def should_reduce(self, n: int) -> bool:
        return n > self.kmeans_threshold and super().should_reduce(n)


def make_builder(kind: str = "auto", **overrides: object) -> IndexBuilder:
    """The builder of the index kind `kind`: its `conf/index/<kind>.yaml` (with `overrides`),
    instantiated; a YAML that does not build an `IndexBuilder` fails here, before any work."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    cfg = OmegaConf.merge(registry.load("index", kind), overrides)
    where = f"index kind {kind!r} ({registry.option_file('index', kind)})"
    if "_target_" not in cfg:
        raise IndexKindError(f"{where}: no _target_ naming its builder class")
    try:
        builder = instantiate(cfg)
    except Exception as e:  # an unimportable class or a bad argument: name the YAML
        raise IndexKindError(f"{where}: cannot build {cfg._target_}: {e}") from e
    if not isinstance(builder, IndexBuilder):
        raise IndexKindError(f"{where}: {cfg._target_} is not an rvc.index.IndexBuilder")
    builder.kind = kind  # the option's name is its kind (what IndexInfo and the CLI report)
    return builder


@dataclass
class IndexInfo:
    """What `build_index` wrote."""

    path: Path
    n_vectors: int  # vectors in the index (centres after a KMeans reduction)
    n_ivf: int
    dim: int
    kind: str
    n_features: int = 0  # feature frames it was built from


def collect_features(store: FeatureStore) -> np.ndarray:
    """All content-feature frames the store's manifest records as done, float32 [N, dim]."""
    done = store.stages.get("features", {}).get("done", {})
    # a file counts only when the manifest records it for the slice's current audio
    recs = [r for name, r in store.slices.items() if done.get(name) == r.sha]
    if not recs:
        raise ValueError(f"{store.root}: no content features recorded (run extract.py first)")
    parts = []
    for rec in recs:
        feats = store.load_features(rec)
        if feats.ndim != 2 or (parts and feats.shape[1] != parts[0].shape[1]):
            raise ValueError(
                f"{store.path('features', rec)}: features of shape {feats.shape} do not match "
                f"the others ([frames, {parts[0].shape[1] if parts else '?'}])"
            )
        parts.append(feats)
    return np.concatenate(parts).astype(np.float32)


def build_index(
    source: FeatureStore | np.ndarray,
    builder: IndexBuilder | None,
    out_path: str | os.PathLike,
) -> IndexInfo:
    """Build an index from a store's features (or an array) and write it atomically.

    `builder` None means `AutoIndex()` (RVC's default behaviour).
    """
    builder = builder if builder is not None else AutoIndex()
    features = collect_features(source) if isinstance(source, FeatureStore) else source
    index = builder.build(features)
    out_path = Path(out_path)
    with atomic_path(out_path) as tmp:
        faiss.write_index(index, str(tmp))
    return IndexInfo(
        path=out_path,
        n_vectors=int(index.ntotal),
        n_ivf=int(faiss.extract_index_ivf(index).nlist),
        dim=int(index.d),
        kind=builder.kind,
        n_features=len(features),
    )
