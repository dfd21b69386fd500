"""Recognising sample rate, version, F0 and vocoder from a bare generator state dict."""

from __future__ import annotations

import pytest
import torch

from rvc.io.detect import (
    AmbiguousModelError,
    ModelDetectionError,
    detect_generator,
    standard_config,
)
from rvc.io.voice_model import build_synthesizer
from rvc.io.weight_norm_names import to_rvc_names
from tests.io.conftest import tiny_config, tiny_synth
from tests.models.conftest import published_discriminator


def _full_state(sr: int, vocoder: str = "HiFi-GAN", use_f0: bool = True, version: str = "v2"):
    """Full-size synthesizer (on the meta device: real shapes, no memory) -> (RVC state, config)."""
    with torch.device("meta"):
        net = build_synthesizer(
            standard_config(sr), use_f0, vocoder, 768 if version == "v2" else 256
        )
    return to_rvc_names(net.state_dict()), net.config


CASES = [
    (sr, voc, True, "v2")
    for voc in ("HiFi-GAN", "MRF HiFi-GAN", "RefineGAN")
    for sr in (32000, 40000, 48000)
]
CASES += [
    (40000, "HiFi-GAN", False, "v2"),
    (48000, "HiFi-GAN", True, "v1"),
    (32000, "HiFi-GAN", False, "v1"),
]


@pytest.mark.parametrize("sr,vocoder,use_f0,version", CASES)
def test_full_size_generators_are_recognised(sr, vocoder, use_f0, version):
    state, config = _full_state(sr, vocoder, use_f0, version)
    # RefineGAN stores nothing rate-specific: only 32k is told apart (by enc_q's 513 bins)
    hint = sr if vocoder == "RefineGAN" and sr != 32000 else None
    d = detect_generator(state, sample_rate=hint)
    assert (d.sample_rate, d.vocoder, d.use_f0, d.version) == (sr, vocoder, use_f0, version)
    assert d.config == config and d.has_enc_q
    assert d.text_enc_hidden_dim == (768 if version == "v2" else 256)
    # without enc_q (as in a voice model) the HiFi-GAN family is still recognised by its kernels
    if vocoder != "RefineGAN":
        bare = {k: v for k, v in state.items() if not k.startswith("enc_q.")}
        assert detect_generator(bare).sample_rate == sr


def test_ambiguous_and_contradicting_cases_raise():
    state, _ = _full_state(48000, "RefineGAN")
    with pytest.raises(AmbiguousModelError, match=r"40000, 48000.*--sr"):
        detect_generator(state)
    no_enc_q = {k: v for k, v in state.items() if not k.startswith("enc_q.")}
    with pytest.raises(AmbiguousModelError, match="32000, 40000, 48000"):
        detect_generator(no_enc_q)
    with pytest.raises(ModelDetectionError, match="sample rate 32000 does not fit"):
        detect_generator(state, sample_rate=32000)  # enc_q has 1025 bins: not 32k
    hifi, _ = _full_state(40000)
    with pytest.raises(ModelDetectionError, match=r"upsample kernels \[16, 16, 4, 4\]"):
        detect_generator(hifi, sample_rate=48000)


def test_broken_and_foreign_state_dicts_raise():
    state, _ = _full_state(40000)
    mixed = dict(state, **{"dec.mrfs.0.0.layers.0.conv1.weight_v": torch.zeros(1)})
    with pytest.raises(ModelDetectionError, match="several decoders"):
        detect_generator(mixed)
    no_source = {k: v for k, v in state.items() if not k.startswith("dec.m_source.")}
    with pytest.raises(ModelDetectionError, match="inconsistent F0"):
        detect_generator(no_source)
    odd = dict(state, **{"enc_p.emb_phone.weight": torch.zeros(192, 1024)})
    with pytest.raises(ModelDetectionError, match="1024-dim"):
        detect_generator(odd)
    with torch.device("meta"):
        disc = published_discriminator("v2").state_dict()
    with pytest.raises(ModelDetectionError, match="a discriminator"):
        detect_generator(disc, where="D_1.pth")


@pytest.mark.parametrize("sr", [32000, 40000, 48000])
def test_tiny_configs_are_read_from_shapes(sr):
    net = tiny_synth(sr=sr)
    d = detect_generator({"module." + k: v for k, v in net.state_dict().items()})  # DDP prefix too
    assert d.config == tiny_config(sr) and d.sample_rate == sr


def _v1_state(sr: int, use_f0: bool = True, vocoder: str = "HiFi-GAN", layout: str = "v1"):
    """A full-size RVC v1 generator (256-dim features) in the `layout` of `sr`, on meta."""
    with torch.device("meta"):
        net = build_synthesizer(standard_config(sr, layout), use_f0, vocoder, 256)
    return to_rvc_names(net.state_dict()), net.config


V1_CASES = [(sr, f0) for sr in (32000, 48000) for f0 in (True, False)]


@pytest.mark.parametrize("sr,use_f0", V1_CASES)
def test_v1_g_checkpoints_are_told_apart_by_enc_q(sr, use_f0):
    """v1 32k and 48k share kernels [16, 16, 4, 4, 4]: enc_q.pre's bins (513 / 1025) decide."""
    state, config = _v1_state(sr, use_f0)
    d = detect_generator(state)
    assert (d.sample_rate, d.version, d.use_f0, d.vocoder) == (sr, "v1", use_f0, "HiFi-GAN")
    assert d.config == config and d.config[12] == ([10, 4, 2, 2, 2] if sr == 32000 else
                                                   [10, 6, 2, 2, 2])  # fmt: skip


@pytest.mark.parametrize("sr,use_f0", V1_CASES)
def test_v1_voice_models_by_noise_convs_or_the_files_rate(sr, use_f0):
    state, config = _v1_state(sr, use_f0)
    bare = {k: v for k, v in state.items() if not k.startswith("enc_q.")}  # as in a voice .pth
    if use_f0:  # noise_convs.0 brings the source down by 4·2·2·2 (32k) or 6·2·2·2 (48k)
        d = detect_generator(bare)
        assert d.sample_rate == sr and d.config == config and not d.has_enc_q
    else:  # nothing rate-specific is stored: the file's `sr` must say it
        with pytest.raises(AmbiguousModelError, match=r"v1 HiFi-GAN.*could be 32000, 48000"):
            detect_generator(bare, where="v1.pth")
        d = detect_generator(bare, sample_rate=sr)
        assert d.sample_rate == sr and d.config == config
    assert d.version == "v1" and d.use_f0 == use_f0


@pytest.mark.parametrize("vocoder", ["MRF HiFi-GAN", "RefineGAN"])
@pytest.mark.parametrize("sr", [32000, 48000])
def test_v1_layouts_of_other_vocoders_are_recognised(vocoder, sr):
    state, config = _v1_state(sr, vocoder=vocoder)
    d = detect_generator(state)
    assert (d.sample_rate, d.version, d.vocoder) == (sr, "v1", vocoder)
    assert d.config[12] == config[12]  # five stages (RefineGAN: five downsample blocks)


@pytest.mark.parametrize("sr", [32000, 48000])
def test_v1_features_in_the_v2_layout_are_still_recognised(sr):
    """What this project trained for embedder.version=v1 before the layout followed it."""
    state, config = _v1_state(sr, layout="v2")
    d = detect_generator(state)
    assert (d.sample_rate, d.version) == (sr, "v1") and d.config == config


def test_v1_layout_with_the_wrong_rate_hint_is_refused():
    state, _ = _v1_state(48000)
    with pytest.raises(ModelDetectionError, match=r"sample rate 32000 does not fit.*1025"):
        detect_generator(state, sample_rate=32000)
    odd = dict(state, **{"dec.noise_convs.0.weight": torch.zeros(256, 1, 50, device="meta")})
    with pytest.raises(ModelDetectionError, match=r"no RVC v1/v2 layout.*noise-conv kernels"):
        detect_generator(odd)
