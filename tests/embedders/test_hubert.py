"""HubertEmbedder on tiny random checkpoints: loading, v1/v2 features, padding, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from rvc.embedders.hubert import EmbedderConfigError, HubertEmbedder, conv_frames
from rvc.registry import load
from rvc.utils.hub import MissingModelFileError

HIDDEN, PROJ = 32, 8  # tiny_config sizes (conftest)
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _audio(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return 0.1 * torch.randn(1, n, generator=g)  # [1, T]


def _cache(root, make_tiny, subfolder: str, **kw) -> dict:
    """Lay a checkpoint out as huggingface_hub's cache does (refs/main → snapshots/<commit>)."""
    repo = root / "models--IAHispano--Applio"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    return make_tiny(repo / "snapshots" / COMMIT / subfolder, **kw)


@pytest.mark.parametrize("fmt", ["bin", "safetensors"])
def test_local_folder_v2_matches_transformers(tmp_path, make_tiny, hf_reference, fmt):
    state = make_tiny(tmp_path / "m", final_proj=False, fmt=fmt)
    emb = HubertEmbedder(name="t", local_path=tmp_path / "m", weights=None, dim=HIDDEN)
    assert emb.model is None  # lazy: nothing read yet
    x = _audio(9_137)
    out = emb(x)
    assert out.shape == (1, conv_frames(9_137), HIDDEN) == (1, 28, HIDDEN)
    assert emb.n_frames(9_137) == 28
    torch.testing.assert_close(out, hf_reference(state, x), atol=1e-4, rtol=1e-4)
    assert emb.embed(x[0].numpy()).shape == (28, HIDDEN)


def test_v1_is_layer_through_final_proj(tmp_path, make_tiny, hf_reference):
    state = make_tiny(tmp_path / "m", final_proj=True)
    emb = HubertEmbedder(local_path=tmp_path / "m", version="v1", dim=PROJ, v1_layer=2)
    x = _audio(16_000, seed=1)
    out = emb(x)
    assert out.shape == (1, 49, PROJ)
    layer2 = hf_reference(state, x, layers=2)  # [1, 49, HIDDEN]
    ref = layer2 @ state["final_proj.weight"].T + state["final_proj.bias"]
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)
    # a checkpoint with final_proj still serves v2 (the projection is then unused)
    v2 = HubertEmbedder(local_path=tmp_path / "m", dim=HIDDEN)(x)
    torch.testing.assert_close(v2, hf_reference(state, x), atol=1e-4, rtol=1e-4)


def test_v1_at_the_last_layer_is_applios_final_proj_of_last_hidden_state(tmp_path, make_tiny):
    """Applio 3.2.5-3.2.8 v1 features: final_proj(model(x).last_hidden_state), here 3 layers."""
    from transformers import HubertModel

    state = make_tiny(tmp_path / "m", final_proj=True)
    x = _audio(12_000, seed=2)
    ref_model = HubertModel.from_pretrained(tmp_path / "m").eval()  # Applio's loading path
    with torch.inference_mode():
        last = ref_model(x).last_hidden_state
    ref = last @ state["final_proj.weight"].T + state["final_proj.bias"]
    last_layer = HubertEmbedder(local_path=tmp_path / "m", version="v1", dim=PROJ, v1_layer=3)
    torch.testing.assert_close(last_layer(x), ref, atol=1e-4, rtol=1e-4)
    earlier = HubertEmbedder(local_path=tmp_path / "m", version="v1", dim=PROJ, v1_layer=2)(x)
    assert (earlier - ref).abs().max() > 1e-2  # the layer matters
    assert HubertEmbedder(local_path=tmp_path / "m", version="v1", dim=PROJ).v1_layer == 9
    with pytest.raises(ValueError, match=r"embedder 'e': v1_layer: 'last' is not a layer"):
        HubertEmbedder(name="e", local_path=tmp_path / "m", version="v1", v1_layer="last")


def test_v1_without_final_proj_is_a_clear_error(tmp_path, make_tiny):
    make_tiny(tmp_path / "noproj", final_proj=False)
    emb = HubertEmbedder(local_path=tmp_path / "noproj", version="v1", dim=PROJ, v1_layer=2)
    with pytest.raises(EmbedderConfigError, match=r"final_proj") as e:
        emb.load()
    assert "noproj" in str(e.value)
    with pytest.raises(EmbedderConfigError, match=r"layer 9.*3 layers"):
        HubertEmbedder(local_path=tmp_path / "noproj", version="v1", dim=PROJ).load()


@pytest.mark.parametrize("version,dim,layer", [("v2", HIDDEN, 9), ("v1", PROJ, 3)])
def test_batch_with_padding_equals_one_by_one(tmp_path, make_tiny, version, dim, layer):
    make_tiny(tmp_path / "m", final_proj=True)
    emb = HubertEmbedder(local_path=tmp_path / "m", version=version, dim=dim, v1_layer=layer)
    lengths = [11_111, 4_000, 7_321]
    x = torch.zeros(3, max(lengths))
    mask = torch.ones(3, max(lengths), dtype=torch.bool)  # True = padding
    for i, n in enumerate(lengths):
        x[i, :n] = _audio(n, seed=10 + i)[0]
        mask[i, :n] = False
    x[1, 4_000:] = 5.0  # junk under the mask must not matter
    out = emb(x, padding_mask=mask)
    assert out.shape == (3, conv_frames(max(lengths)), dim)
    for i, n in enumerate(lengths):
        alone = emb(x[i : i + 1, :n])[0]
        k = emb.n_frames(n)
        assert alone.shape == (k, dim)
        torch.testing.assert_close(out[i, :k], alone, atol=1e-4, rtol=1e-4)
        assert torch.all(out[i, k:] == 0)


def test_hub_cache_loads_without_network(tmp_path, make_tiny, hf_reference, no_network):
    sub = "Resources/embedders/contentvec"
    state = _cache(tmp_path, make_tiny, sub, final_proj=True)
    cfg = load("embedder", "contentvec")  # the preset is its YAML
    emb = instantiate(cfg, cache_dir=tmp_path, version="v1", dim=PROJ, v1_layer=3)
    assert emb.name == "contentvec" and emb.model is None
    x = _audio(6_400, seed=3)
    out = emb(x)
    ref = hf_reference(state, x) @ state["final_proj.weight"].T + state["final_proj.bias"]
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)
    assert {c["filename"] for c in no_network} == {f"{sub}/config.json", f"{sub}/pytorch_model.bin"}
    assert all(c["cache_dir"] == tmp_path for c in no_network)


def test_offline_with_empty_cache_names_the_file_and_where(tmp_path, no_network):
    emb = HubertEmbedder(
        name="spin-v2", subfolder="Resources/embedders/spin-v2", cache_dir=tmp_path
    )
    with pytest.raises(MissingModelFileError) as e:
        emb(_audio(4_000))
    msg = str(e.value)
    assert "Resources/embedders/spin-v2/config.json" in msg
    assert "IAHispano/Applio" in msg and str(tmp_path) in msg and "local_path" in msg
    assert no_network  # the cache was asked, and only the cache


def test_custom_folder_errors_name_the_folder(tmp_path, make_tiny):
    make_tiny(tmp_path / "good", final_proj=False)
    (tmp_path / "noconf").mkdir()
    (tmp_path / "good" / "pytorch_model.bin").rename(tmp_path / "noconf" / "pytorch_model.bin")
    with pytest.raises(MissingModelFileError, match=r"noconf has no config\.json"):
        HubertEmbedder(name="custom", local_path=tmp_path / "noconf", weights=None).load()
    with pytest.raises(MissingModelFileError, match=r"good has no weights"):
        HubertEmbedder(name="custom", local_path=tmp_path / "good", weights=None).load()
    with pytest.raises(MissingModelFileError, match=r"folder not found: .*absent"):
        HubertEmbedder(name="custom", local_path=tmp_path / "absent").load()

    make_tiny(tmp_path / "small", final_proj=True)
    with pytest.raises(EmbedderConfigError, match=r"small.*hidden size 32.*768"):
        HubertEmbedder(name="custom", local_path=tmp_path / "small", weights=None).load()
    with pytest.raises(EmbedderConfigError, match=r"small.*final_proj gives 8.*256"):
        HubertEmbedder(local_path=tmp_path / "small", version="v1", v1_layer=2).load()


def test_mismatched_weights_and_bad_input(tmp_path, make_tiny):
    make_tiny(tmp_path / "m", final_proj=False)
    (tmp_path / "m" / "config.json").write_text(
        (tmp_path / "m" / "config.json")
        .read_text()
        .replace('"intermediate_size": 64', '"intermediate_size": 48')
    )
    emb = HubertEmbedder(local_path=tmp_path / "m", dim=HIDDEN)
    with pytest.raises(EmbedderConfigError, match=r"pytorch_model\.bin does not fit config\.json"):
        emb.load()
    make_tiny(tmp_path / "ok", final_proj=False)
    emb = HubertEmbedder(local_path=tmp_path / "ok", dim=HIDDEN)
    with pytest.raises(ValueError, match=r"too short"):
        emb(_audio(399))
    with pytest.raises(ValueError, match=r"\[B, T\]"):
        emb(torch.zeros(400))
    assert emb.n_frames(399) == 0 and emb.n_frames(400) == 1 and emb.n_frames(16_000) == 49


def test_construction_reads_nothing(tmp_path):
    emb = HubertEmbedder(local_path=tmp_path / "not-there-yet")  # lazy: no error until use
    assert (emb.dim, emb.version, emb.model) == (768, "v2", None)
    assert HubertEmbedder(version="v1").dim == 256
    with pytest.raises(ValueError, match=r"no embedder named 'nope'; known: .*contentvec"):
        load("embedder", "nope")
    with pytest.raises(ValueError, match=r"'v1' or 'v2'"):
        HubertEmbedder(version="v3")


def test_embed_is_finite_and_deterministic(tmp_path, make_tiny):
    make_tiny(tmp_path / "m", final_proj=False)
    emb = HubertEmbedder(local_path=tmp_path / "m", dim=HIDDEN)
    a = np.random.default_rng(0).standard_normal(5_000).astype(np.float32) * 0.1
    f1, f2 = emb.embed(a), emb.embed(a)
    assert f1.dtype == np.float32 and np.isfinite(f1).all()
    np.testing.assert_array_equal(f1, f2)
    assert not np.allclose(f1, emb.embed(a[::-1].copy())[: len(f1)])


def test_masked_group_norm_is_group_norm_on_the_valid_part():
    from rvc.embedders.hubert import _masked_group_norm

    torch.manual_seed(0)
    gn = torch.nn.GroupNorm(4, 8)
    torch.nn.init.normal_(gn.weight)
    torch.nn.init.normal_(gn.bias)
    x = torch.randn(2, 8, 50)
    valid = torch.arange(50)[None] < torch.tensor([[50], [31]])  # [2, 50]
    with torch.no_grad():
        y = _masked_group_norm(x, valid, gn)
        torch.testing.assert_close(y[0], gn(x[:1])[0])
        torch.testing.assert_close(y[1, :, :31], gn(x[1:, :, :31])[0])


def test_half_precision_follows_the_module(tmp_path, make_tiny):
    make_tiny(tmp_path / "m", final_proj=False)
    emb = HubertEmbedder(local_path=tmp_path / "m", dim=HIDDEN).load()
    x = _audio(8_000, seed=4)
    ref = emb(x)
    out = emb.to(torch.float16)(x)
    assert out.dtype == torch.float16
    torch.testing.assert_close(out.float(), ref, atol=0.05, rtol=0.05)
