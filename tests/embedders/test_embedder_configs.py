"""Every conf/embedder option composes and instantiates on CPU without downloading anything."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from rvc.embedders.base import Embedder
from rvc.embedders.hubert import HubertEmbedder
from rvc.formats import APPLIO_REPO
from rvc.registry import load, names
from tests.conftest import CONF_DIR, compose

CONF = Path(CONF_DIR)
OPTIONS = names("embedder")  # shared `_bases` are not options


def _compose(option: str, *overrides: str):
    return compose(None, [f"+embedder={option}", *overrides])


def test_all_options_present():
    expected = {"contentvec", "chinese_hubert_base", "japanese_hubert_base", "korean_hubert_base"}
    assert expected | {"spin", "spin_v2", "custom", "spectral"} <= set(OPTIONS)


@pytest.mark.parametrize("option", OPTIONS)
def test_option_composes_and_instantiates(option, tmp_path, monkeypatch):
    import huggingface_hub

    def no_hub(*_a, **_k):
        raise AssertionError("an embedder touched the hub at construction")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_hub)
    extra = [f"embedder.local_path={tmp_path}"] if option == "custom" else []
    cfg = _compose(option, *extra)
    assert "device" not in cfg.embedder  # the pipeline passes device=
    emb = instantiate(cfg.embedder, device="cpu")
    assert isinstance(emb, Embedder)
    assert (emb.name, emb.dim, emb.version) == (
        cfg.embedder.name,
        cfg.embedder.dim,
        cfg.embedder.version,
    )
    assert emb.dim == {"v1": 256, "v2": 768}[emb.version]
    if isinstance(emb, HubertEmbedder):
        assert emb.model is None  # lazy: weights only on first use
        if option != "custom":  # Applio's packaging: its repo, one folder per embedder
            assert emb.repo_id == APPLIO_REPO and emb.subfolder.startswith("Resources/embedders/")
    else:
        out = emb(torch.zeros(1, 3_200) + 0.01 * torch.randn(1, 3_200))
        assert out.shape == (1, emb.n_frames(3_200), emb.dim)


def test_custom_requires_a_path_and_runs_from_one(tmp_path, make_tiny):
    cfg = _compose("custom")
    assert OmegaConf.is_missing(cfg.embedder, "local_path")
    make_tiny(tmp_path / "mine", final_proj=True, fmt="bin")
    cfg = _compose("custom", f"embedder.local_path={tmp_path / 'mine'}", "embedder.dim=32")
    emb = instantiate(cfg.embedder, device="cpu")
    assert emb(torch.randn(2, 4_000) * 0.1).shape == (2, 12, 32)


def test_v1_override_and_interpolated_dim():
    cfg = _compose(
        "contentvec", "embedder.version=v1", "embedder.dim=256", "+text_dim=${embedder.dim}"
    )
    emb = instantiate(cfg.embedder, device="cpu")
    assert (emb.version, emb.dim, cfg.text_dim) == ("v1", 256, 256)


@pytest.mark.parametrize("option", OPTIONS)
def test_registry_and_hydra_give_the_same_option(option):
    """`rvc.registry.load` (conversion's lookup by name) merges `defaults` as Hydra does."""
    composed = _compose(option).embedder
    merged = OmegaConf.merge({"embedder": load("embedder", option)}).embedder
    assert OmegaConf.to_container(merged) == OmegaConf.to_container(composed)


def test_each_fact_of_an_option_is_stated_once():
    """Options state only what differs from their base (the HuBERT presets: name and folder)."""
    for option in OPTIONS:
        own = OmegaConf.load(CONF / "embedder" / f"{option}.yaml")
        base = OmegaConf.load(CONF / "embedder" / f"{own.defaults[0]}.yaml")
        assert own.defaults[-1] == "_self_"
        for key in set(own) & set(base) - {"defaults"}:
            if not OmegaConf.is_missing(base, key):
                assert own[key] != base[key], (option, key)
