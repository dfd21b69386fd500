"""Building the retrieval index: factory rule, builders, store features, atomic writes, configs."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from rvc.data.store import FeatureStore, SliceRecord
from rvc.index import (
    AutoIndex,
    FaissIndex,
    IndexBuilder,
    KMeansIndex,
    build_index,
    collect_features,
    index_factory_string,
    index_file_name,
    read_index,
)
from tests.conftest import CONF_DIR

DIM = 32


def feats(n: int, seed: int = 0, dim: int = DIM) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def make_store(
    root: Path, frames: tuple[int, ...] = (120, 80, 100), dim: int = DIM
) -> FeatureStore:
    """A store whose manifest records float16 features for one slice per entry of `frames`."""
    store = FeatureStore(root)
    done = {}
    for i, n in enumerate(frames):
        rec = SliceRecord(f"s{i}", 0, "src.wav", 0, n * 640, n * 640, n * 320, f"sha{i}")
        store.slices[rec.name] = rec
        path = store.path("features", rec)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, feats(n, seed=i, dim=dim).astype(np.float16))
        done[rec.name] = rec.sha
    store.stages["features"] = {
        "config": {"name": "spectral", "dim": dim},
        "hash": "x",
        "done": done,
    }
    store.save()
    return store


def sorted_rows(x: np.ndarray) -> np.ndarray:
    return x[np.lexsort(x.T[::-1])]


@pytest.mark.parametrize(
    "n,expected",
    [
        (0, 1),
        (1, 1),
        (39, 1),
        (40, 1),
        (78, 2),
        (1000, 25),  # N // 39 wins for small sets
        (200_000, 5128),
        (1_000_000, 16000),  # 16·√N wins for large ones: min(16000, 25641)
    ],
)
def test_factory_string_follows_rvc(n, expected):
    assert index_factory_string(n) == (f"IVF{expected},Flat", expected)


def test_file_names():
    assert index_file_name("alice") == "alice.index"


def test_faiss_builder_indexes_every_frame(tmp_path):
    x = feats(300)
    info = build_index(x, FaissIndex(batch_size=64), tmp_path / "a.index")
    assert (info.n_vectors, info.n_ivf, info.dim, info.kind, info.n_features) == (
        300,
        7,
        DIM,
        "faiss",
        300,
    )
    index = read_index(info.path, dim=DIM)
    ivf = faiss.extract_index_ivf(index)
    assert (index.d, index.ntotal, ivf.nlist, ivf.nprobe) == (DIM, 300, 7, 1)
    # every frame is in the file, once (added in batches of 64, shuffled)
    np.testing.assert_array_equal(sorted_rows(index.reconstruct_n(0, 300)), sorted_rows(x))
    assert [p.name for p in tmp_path.iterdir()] == ["a.index"]  # no temp file left behind


@pytest.mark.parametrize("n", [1, 5, 38, 40, 41])
def test_tiny_sets_build(tmp_path, n):
    info = build_index(feats(n), AutoIndex(), tmp_path / "t.index")
    assert info.n_vectors == n and info.n_ivf == index_factory_string(n)[1]


def test_float16_features_are_accepted():
    assert FaissIndex().build(feats(100).astype(np.float16)).ntotal == 100


@pytest.mark.parametrize(
    "bad,match",
    [
        (np.zeros((0, DIM), np.float32), "no feature frames"),
        (np.zeros(DIM, np.float32), r"\[frames, dim\]"),
        (np.zeros((10, 0), np.float32), r"\[frames, dim\]"),
    ],
)
def test_unusable_features_are_clear_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        FaissIndex().build(bad)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_features_are_refused(value):
    x = feats(100)
    x[7, 3] = value
    with pytest.raises(ValueError, match="1 of 100 feature frames"):
        AutoIndex().build(x)


def test_kmeans_reduces_to_centres():
    index = KMeansIndex(kmeans_centres=64).build(feats(500))
    assert index.ntotal == 64 and index.d == DIM
    assert faiss.extract_index_ivf(index).nlist == index_factory_string(64)[1]
    # fewer frames than centres: the frames themselves are indexed
    x = feats(50)
    small = KMeansIndex(kmeans_centres=64).build(x)
    np.testing.assert_array_equal(sorted_rows(small.reconstruct_n(0, 50)), sorted_rows(x))


def test_kmeans_centres_lie_among_the_data():
    x = feats(500)
    centres = KMeansIndex(kmeans_centres=16).build(x).reconstruct_n(0, 16)
    assert np.isfinite(centres).all()
    # means of clusters: inside the data's range, much closer to the mean than single frames
    assert np.linalg.norm(centres - x.mean(0), axis=1).mean() < np.linalg.norm(x, axis=1).mean()


def test_auto_reduces_only_above_its_threshold():
    auto = AutoIndex(kmeans_threshold=300, kmeans_centres=64)
    assert auto.build(feats(300)).ntotal == 300
    assert auto.build(feats(400)).ntotal == 64


def test_builds_are_reproducible():
    x = feats(400)
    for builder in (FaissIndex(seed=3), KMeansIndex(kmeans_centres=32, seed=3)):
        a, b = builder.build(x), builder.build(x)
        assert np.array_equal(faiss.serialize_index(a), faiss.serialize_index(b))


def test_bad_builder_parameters():
    with pytest.raises(ValueError, match="batch_size"):
        FaissIndex(batch_size=0)
    with pytest.raises(ValueError, match="kmeans_centres"):
        KMeansIndex(kmeans_centres=0)


def test_collect_features_reads_recorded_slices_only(tmp_path):
    store = make_store(tmp_path / "exp")
    x = collect_features(store)
    assert x.dtype == np.float32 and x.shape == (300, DIM)
    np.testing.assert_array_equal(x[:120], feats(120, seed=0).astype(np.float16))
    # a slice whose audio changed since extraction (sha differs) does not count
    store.slices["s1"].sha = "new"
    assert collect_features(store).shape == (220, DIM)


def test_collect_features_without_features_names_the_store(tmp_path):
    store = make_store(tmp_path / "exp")
    store.stages["features"]["done"] = {}
    with pytest.raises(ValueError, match="exp: no content features"):
        collect_features(store)
    with pytest.raises(ValueError, match="no content features"):
        collect_features(FeatureStore(tmp_path / "empty"))


def test_build_index_from_a_store_overwrites_atomically(tmp_path):
    store = make_store(tmp_path / "exp")
    out = tmp_path / "exp" / "exp.index"
    out.write_text("old")
    info = build_index(store, None, out)
    assert info.kind == "auto" and info.n_vectors == 300 and info.n_features == 300
    assert read_index(out).ntotal == 300
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".exp.index")]


@pytest.mark.parametrize(
    "option,cls", [("auto", AutoIndex), ("faiss", FaissIndex), ("kmeans", KMeansIndex)]
)
def test_config_options_instantiate(option, cls):
    builder = instantiate(OmegaConf.load(Path(CONF_DIR) / "index" / f"{option}.yaml"))
    assert type(builder) is cls and isinstance(builder, IndexBuilder)
    assert builder.kind == option and builder.batch_size == 8192
    if option != "faiss":
        assert builder.kmeans_centres == 10_000
    if option == "auto":
        assert builder.kmeans_threshold == 200_000
