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
from rvc.models.discriminators import MultiPeriodDiscriminator
from tests.io.conftest import tiny_config, tiny_synth


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
        disc = MultiPeriodDiscriminator("v2").state_dict()
    with pytest.raises(ModelDetectionError, match="a discriminator"):
        detect_generator(disc, where="D_1.pth")


@pytest.mark.parametrize("sr", [32000, 40000, 48000])
def test_tiny_configs_are_read_from_shapes(sr):
    net = tiny_synth(sr=sr)
    d = detect_generator({"module." + k: v for k, v in net.state_dict().items()})  # DDP prefix too
    assert d.config == tiny_config(sr) and d.sample_rate == sr
