"""SpectralEmbedder: deterministic, HuBERT-aligned frames, v1/v2 sizes, batching with padding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rvc.embedders.spectral import SpectralEmbedder

SR = 16000


def _tone(freq: float, n: int) -> np.ndarray:
    t = np.arange(n) / SR
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize("version,dim", [("v2", 768), ("v1", 256)])
def test_dims_and_hubert_frame_count(version, dim, make_tiny, tmp_path):
    from rvc.embedders.hubert import HubertEmbedder

    make_tiny(tmp_path / "m", final_proj=False)
    hubert = HubertEmbedder(local_path=tmp_path / "m", dim=32)
    emb = SpectralEmbedder(version=version)
    assert (emb.dim, emb.version, emb.name) == (dim, version, "spectral")
    for n in (400, 719, 720, 12_345):
        x = torch.from_numpy(_tone(220.0, n))[None]
        out = emb(x)
        assert out.shape == (1, emb.n_frames(n), dim)
        assert out.shape[1] == hubert(x).shape[1]  # same 20 ms frames as HuBERT
        assert torch.isfinite(out).all()


def test_deterministic_across_instances_and_seeded():
    a = _tone(300.0, 8_000) + 0.01 * np.random.default_rng(0).standard_normal(8_000).astype(
        np.float32
    )
    f1 = SpectralEmbedder().embed(a)
    f2 = SpectralEmbedder().embed(a)
    np.testing.assert_array_equal(f1, f2)
    assert not np.allclose(f1, SpectralEmbedder(seed=1).embed(a))
    proj = SpectralEmbedder().proj  # [n_mels, dim] with orthonormal rows
    torch.testing.assert_close(proj @ proj.T, torch.eye(proj.shape[0]), atol=1e-5, rtol=0)


def test_different_sounds_give_different_features():
    emb = SpectralEmbedder()
    n = 6_400
    noise = 0.1 * np.random.default_rng(1).standard_normal(n).astype(np.float32)
    low, high = _tone(200.0, n), _tone(2000.0, n)
    # per-clip mean normalisation removes what is constant, so compare sequences of sounds
    clips = {
        "low-high": np.concatenate([low, high]),
        "high-low": np.concatenate([high, low]),
        "low-noise": np.concatenate([low, noise]),
    }
    feats = {k: emb.embed(v) for k, v in clips.items()}
    for a, b in (("low-high", "high-low"), ("low-high", "low-noise"), ("high-low", "low-noise")):
        x, y = feats[a], feats[b]
        assert np.linalg.norm(x - y) > 0.3 * (np.linalg.norm(x) + np.linalg.norm(y)), (a, b)
    f = feats["low-high"]
    half = emb.n_frames(n)
    steady = np.abs(np.diff(f[1 : half - 2], axis=0)).mean()  # frames within one sound
    change = np.abs(f[half + 2 :].mean(0) - f[: half - 2].mean(0)).mean()  # across the switch
    assert change > 20 * steady


def test_batch_with_padding_equals_one_by_one():
    emb = SpectralEmbedder(version="v1")
    lengths = [9_001, 3_200, 6_555]
    x = torch.full((3, max(lengths)), 7.0)  # junk under the mask must not matter
    mask = torch.ones(3, max(lengths), dtype=torch.bool)
    rng = np.random.default_rng(2)
    for i, n in enumerate(lengths):
        x[i, :n] = torch.from_numpy(
            _tone(150.0 * (i + 1), n) + 0.01 * rng.standard_normal(n).astype(np.float32)
        )
        mask[i, :n] = False
    out = emb(x, padding_mask=mask)
    for i, n in enumerate(lengths):
        k = emb.n_frames(n)
        # bit-exact: sharded and single-device extraction must write the same files
        assert torch.equal(out[i, :k], emb(x[i : i + 1, :n])[0])
        assert torch.all(out[i, k:] == 0)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"768-dim, but dim=256"):
        SpectralEmbedder(version="v2", dim=256)
    with pytest.raises(ValueError, match=r"'v1' or 'v2'"):
        SpectralEmbedder(version="v0")
    with pytest.raises(ValueError, match=r"too short"):
        SpectralEmbedder()(torch.zeros(1, 100))
