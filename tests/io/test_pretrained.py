"""The `pretrained` config group: published files through a fake hub cache, custom, none."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from rvc.formats import file_sha256
from rvc.io.checkpoints import ArchitectureMismatchError, save_pretrained
from rvc.io.pretrained import (
    CustomPretrained,
    DefaultPretrained,
    NoPretrained,
    PretrainedNotAvailableError,
    PretrainedPaths,
    default_pretrained_files,
)
from rvc.io.safe_load import ModelFileError
from rvc.utils.hub import MissingModelFileError
from tests.conftest import CONF_DIR
from tests.conftest import put_in_hub_cache as _put_in_cache
from tests.io.conftest import tiny_synth
from tests.models.conftest import published_discriminator


class TinyD(nn.Module):
    """Stands in for the (large) multi-period discriminator: same naming, few weights."""

    def __init__(self, n: int = 2) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(
            nn.ModuleDict({"conv_post": weight_norm(nn.Conv2d(1, 2, (3, 1)))}) for _ in range(n)
        )


def test_published_file_table():
    assert default_pretrained_files("HiFi-GAN", 40000) == (
        "IAHispano/Applio", "Resources/pretrained_v2/f0G40k.pth", "Resources/pretrained_v2/f0D40k.pth")  # fmt: skip
    assert default_pretrained_files("RefineGAN", 32000)[1] == "Resources/refinegan/f0G32k.pth"
    assert default_pretrained_files("HiFi-GAN", 48000, use_f0=False) == (
        "lj1995/VoiceConversionWebUI", "pretrained_v2/G48k.pth", "pretrained_v2/D48k.pth")  # fmt: skip
    assert default_pretrained_files("HiFi-GAN", 32000, version="v1")[1] == "pretrained/f0G32k.pth"


def test_default_resolves_through_the_hub_cache_and_loads(tmp_path, offline_hub):
    g_src, d_src = tiny_synth(seed=7), TinyD()
    cache = tmp_path / "hub"
    g_file = _put_in_cache(
        cache,
        "IAHispano/Applio",
        "Resources/pretrained_v2/f0G40k.pth",
        lambda p: save_pretrained(p, g_src),
    )
    _put_in_cache(
        cache,
        "IAHispano/Applio",
        "Resources/pretrained_v2/f0D40k.pth",
        lambda p: save_pretrained(p, d_src),
    )
    source = DefaultPretrained(cache_dir=cache, sha256={"f0G40k.pth": file_sha256(g_file)})
    g, d = tiny_synth(seed=1), TinyD()
    paths = source.load_into(g, d, vocoder="HiFi-GAN", sample_rate=40000)
    assert paths.generator.name == "f0G40k.pth" and paths.discriminator.name == "f0D40k.pth"
    for a, b in ((g, g_src), (d, d_src)):
        for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
            assert ka == kb and torch.equal(va, vb)
    assert offline_hub == [True, True]  # both found in the cache on the first, cache-only call

    bad = DefaultPretrained(
        cache_dir=cache, sha256={"Resources/pretrained_v2/f0G40k.pth": "00" * 32}
    )
    with pytest.raises(ModelFileError, match="does not match the expected"):
        bad.resolve("HiFi-GAN", 40000)


def test_default_offline_without_the_file_is_a_clear_error(tmp_path, offline_hub):
    with pytest.raises(MissingModelFileError, match="f0G48k.pth"):
        DefaultPretrained(cache_dir=tmp_path / "empty").resolve("HiFi-GAN", 48000)


@pytest.mark.parametrize(
    "vocoder,sr,match",
    [
        ("MRF HiFi-GAN", 40000, "MRF HiFi-GAN"),
        ("RefineGAN", 40000, "32k only"),
        ("RefineGAN", 48000, "32k only"),
    ],
)
def test_default_without_a_published_file_errors(vocoder, sr, match, offline_hub):
    with pytest.raises(PretrainedNotAvailableError, match=match):
        DefaultPretrained().resolve(vocoder, sr)
    assert not offline_hub  # refused before asking the hub


def test_wrong_generator_architecture_names_the_mismatch(tmp_path):
    path = save_pretrained(tmp_path / "g48.pth", tiny_synth(sr=48000))
    with pytest.raises(ArchitectureMismatchError) as err:
        CustomPretrained(generator=path).load_into(
            tiny_synth(sr=40000), None, vocoder="HiFi-GAN", sample_rate=40000
        )
    msg = str(err.value)
    assert "g48.pth" in msg and "dec.ups.0" in msg and "(64, 32, 24) vs (64, 32, 16)" in msg
    assert "HiFi-GAN generator at 48000 Hz" in msg


def test_wrong_discriminator_architecture_names_the_mismatch(tmp_path):
    path = save_pretrained(tmp_path / "f0D40k_v1.pth", published_discriminator("v1"))
    with pytest.raises(
        ArchitectureMismatchError,
        match=r"missing tensors: discriminators\.7\..*7 sub-discriminators",
    ):
        CustomPretrained(discriminator=path).load_into(
            None, published_discriminator("v2"), vocoder="HiFi-GAN", sample_rate=40000
        )


def test_config_group_options_build(tmp_path):
    group = Path(CONF_DIR) / "pretrained"
    assert sorted(p.stem for p in group.glob("*.yaml")) == ["custom", "default", "none", "voice"]
    default = instantiate(OmegaConf.load(group / "default.yaml"))
    assert isinstance(default, DefaultPretrained) and default.repo_id == "IAHispano/Applio"
    none = instantiate(OmegaConf.load(group / "none.yaml"))
    assert (
        isinstance(none, NoPretrained) and none.resolve("MRF HiFi-GAN", 40000) == PretrainedPaths()
    )
    g = save_pretrained(tmp_path / "G.pth", tiny_synth())
    cfg = OmegaConf.merge(
        OmegaConf.load(group / "custom.yaml"), {"generator": str(g), "discriminator": None}
    )
    custom = instantiate(cfg)
    assert custom.resolve("HiFi-GAN", 40000) == PretrainedPaths(g, None)
    with pytest.raises(MissingModelFileError, match="nope.pth"):
        CustomPretrained(generator=tmp_path / "nope.pth").resolve("HiFi-GAN", 40000)
    with pytest.raises(ValueError, match="generator and/or a discriminator"):
        CustomPretrained(None, None)
