"""Reading indexes (ours, RVC's names, broken files) and retrieval weights against brute force."""

from __future__ import annotations

import faiss
import numpy as np
import pytest
import torch

from rvc.index import (
    FaissIndex,
    IndexFileError,
    blend,
    build_index,
    find_index,
    index_vectors,
    neighbour_weights,
    read_index,
    retrieve,
)

DIM = 32


def feats(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)


@pytest.fixture
def index_file(tmp_path):
    return build_index(feats(400), FaissIndex(), tmp_path / "voice.index").path


def brute_force(x: np.ndarray, q: np.ndarray, k: int = 8) -> np.ndarray:
    """RVC's retrieval by hand: k nearest by squared L2, weights (1/d)², weighted sum."""
    d = ((q[:, None, :].astype(np.float64) - x[None]) ** 2).sum(-1)  # [T, N] squared L2
    nn = np.argsort(d, axis=1)[:, :k]
    w = np.square(1 / np.take_along_axis(d, nn, axis=1))
    w /= w.sum(axis=1, keepdims=True)
    return (w[:, :, None] * x[nn]).sum(axis=1)


# ---- reading ---------------------------------------------------------------------------------
def test_read_index_round_trip(index_file):
    index = read_index(index_file, dim=DIM)
    assert (index.d, index.ntotal, faiss.extract_index_ivf(index).nprobe) == (DIM, 400, 1)


def test_dim_mismatch_names_both_dims(index_file):
    with pytest.raises(IndexFileError, match=r"voice\.index.*32-dim.*768-dim"):
        read_index(index_file, dim=768)


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(None, id="missing"),
        pytest.param(b"", id="empty"),
        pytest.param("half", id="truncated"),
        pytest.param("head", id="truncated-header"),
        pytest.param(b"version https://git-lfs.github.com/spec/v1\n", id="text"),
        pytest.param(np.random.default_rng(0).bytes(4096), id="garbage"),
    ],
)
def test_bad_files_are_clear_errors(tmp_path, index_file, content):
    bad = tmp_path / "bad_file.index"
    data = index_file.read_bytes()
    if content == "half":
        content = data[: len(data) // 2]
    elif content == "head":
        content = data[:10]
    if content is not None:
        bad.write_bytes(content)
    with pytest.raises(IndexFileError, match="bad_file.index") as e:
        read_index(bad)
    assert isinstance(e.value, ValueError)
    assert "\n" not in str(e.value) and ".cpp" not in str(e.value)


def test_a_folder_is_not_an_index(tmp_path):
    (tmp_path / "x.index").mkdir()
    with pytest.raises(IndexFileError, match="x.index: not a file"):
        read_index(tmp_path / "x.index")


def test_a_trained_only_index_is_refused(tmp_path):
    index = faiss.index_factory(DIM, "IVF4,Flat")
    index.train(feats(200))
    path = tmp_path / "trained_voice_v2.index"
    faiss.write_index(index, str(path))
    with pytest.raises(IndexFileError, match="trained_voice_v2.index: the index holds no vectors"):
        read_index(path)


# ---- finding ---------------------------------------------------------------------------------
def _touch(folder, *names):
    for name in names:
        (folder / name).write_bytes(b"x")


def test_find_index_prefers_our_name(tmp_path):
    _touch(tmp_path, "voice.pth", "voice.index", "added_IVF25_Flat_nprobe_1_voice_v2.index")
    assert find_index(tmp_path / "voice.pth") == tmp_path / "voice.index"


@pytest.mark.parametrize(
    "name",
    [
        "added_IVF25_Flat_nprobe_1_voice_v2.index",  # RVC WebUI
        "added_IVF1024_Flat_nprobe_1_voice_v1.index",
        "added_voice_v2.index",  # older Applio
    ],
)
def test_find_index_reads_legacy_names(tmp_path, name):
    # other models' indexes and the vector-less trained_ file beside it are not picked
    _touch(tmp_path, "voice.pth", name, "added_IVF9_Flat_nprobe_1_other_v2.index")
    _touch(tmp_path, "trained_IVF25_Flat_nprobe_1_voice_v2.index")
    assert find_index(tmp_path / "voice.pth") == tmp_path / name


def test_find_index_takes_a_single_unnamed_candidate(tmp_path):
    _touch(tmp_path, "voice.pth", "added_IVF9_Flat_nprobe_1_renamed_v2.index")
    assert find_index(tmp_path / "voice.pth").name.endswith("renamed_v2.index")


def test_find_index_does_not_guess(tmp_path):
    _touch(tmp_path, "voice.pth", "trained_voice_v2.index", "other.index")
    assert find_index(tmp_path / "voice.pth") is None
    _touch(tmp_path, "added_a_v2.index", "added_b_v2.index")
    assert find_index(tmp_path / "voice.pth") is None
    _touch(tmp_path, "added_voice_v1.index", "added_voice_v2.index")
    assert find_index(tmp_path / "voice.pth") is None  # two versions of this model: ambiguous


# ---- retrieval ---------------------------------------------------------------------------------
def test_retrieving_stored_vectors_returns_them(index_file):
    index = read_index(index_file)
    x = feats(400)
    out = retrieve(index, x[:50])
    assert out.shape == (50, DIM) and out.dtype == np.float32
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, x[:50], atol=1e-5)


def test_duplicated_exact_matches_give_no_nan():
    x = feats(100)
    index = faiss.IndexFlatL2(DIM)
    index.add(np.concatenate([x, x]))
    out = retrieve(index, x[:10])
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, x[:10], atol=1e-5)


def test_weights_match_brute_force_on_a_flat_index():
    x, q = feats(300), feats(40, seed=1)
    index = faiss.IndexFlatL2(DIM)
    index.add(x)
    np.testing.assert_allclose(retrieve(index, q), brute_force(x, q), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(retrieve(index, q, k=3), brute_force(x, q, 3), rtol=1e-4, atol=1e-5)


def test_weights_match_brute_force_on_a_built_index_probing_every_list():
    x, q = feats(400), feats(40, seed=1)
    index = FaissIndex().build(x)
    ivf = faiss.extract_index_ivf(index)
    ivf.nprobe = ivf.nlist  # exact search: the same neighbours as brute force
    np.testing.assert_allclose(retrieve(index, q), brute_force(x, q), rtol=1e-4, atol=1e-5)


def test_retrieve_on_the_nprobe_1_index_is_finite_and_near_the_data(index_file):
    q = feats(200, seed=5)
    out = retrieve(read_index(index_file), q)
    assert np.isfinite(out).all()
    # a weighted mean of neighbours: never further from the query than the farthest data point
    assert np.linalg.norm(out - q, axis=1).max() < np.linalg.norm(feats(400), axis=1).max() * 3


def test_neighbour_weights_edge_cases():
    d = np.array([[1.0, 2.0, 4.0], [0.0, 1.0, 0.0], [3.4e38, 3.4e38, 3.4e38], [1.0, 2.0, 9.0]])
    ids = np.array([[0, 1, 2], [3, 4, 5], [-1, -1, -1], [6, 7, -1]])
    w = neighbour_weights(d.astype(np.float32), ids)
    assert np.isfinite(w).all()
    raw = np.array([1, 1 / 4, 1 / 16])
    np.testing.assert_allclose(w[0], raw / raw.sum())
    np.testing.assert_allclose(w[1], [0.5, 0, 0.5])  # exact matches share all the weight
    np.testing.assert_array_equal(w[2], 0)  # no neighbour at all
    np.testing.assert_allclose(w[3], [0.8, 0.2, 0])  # a missing id (-1) gets nothing


def test_k_larger_than_the_index_and_empty_input():
    x = feats(5)
    index = faiss.IndexFlatL2(DIM)
    index.add(x)
    np.testing.assert_allclose(retrieve(index, x, k=8), x, atol=1e-5)
    assert retrieve(index, np.zeros((0, DIM), np.float32)).shape == (0, DIM)


def test_retrieve_refuses_other_dims(index_file):
    with pytest.raises(ValueError, match="32-dim index"):
        retrieve(read_index(index_file), np.zeros((4, 768), np.float32))


def test_index_vectors_are_read_once(index_file):
    index = read_index(index_file)
    a = index_vectors(index)
    assert a.shape == (400, DIM) and index_vectors(index) is a
    index.add(feats(3, seed=9))  # a grown index is read out again
    assert index_vectors(index).shape == (403, DIM)


def test_blend():
    a, b = np.zeros((4, DIM), np.float32), np.ones((4, DIM), np.float32)
    np.testing.assert_array_equal(blend(a, b, 0.0), a)
    np.testing.assert_array_equal(blend(a, b, 1.0), b)
    np.testing.assert_allclose(blend(a, b, 0.3), 0.3)
    assert blend(a, b, 0.3).dtype == np.float32
    t = blend(torch.zeros(4, DIM), torch.ones(4, DIM), 0.75)
    assert isinstance(t, torch.Tensor) and torch.allclose(t, torch.full((4, DIM), 0.75))
    with pytest.raises(ValueError, match="index_rate"):
        blend(a, b, 1.5)
    with pytest.raises(ValueError, match="do not match"):
        blend(a, b[:2], 0.5)
