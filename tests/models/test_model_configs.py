"""conf/model and conf/vocoder options hold FORMATS.md §4 numbers and build what they name."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from rvc.audio.mel import MelSpectrogram
from rvc.models.synthesizer import Synthesizer
from rvc.models.vocoders import VOCODER_NAMES

CONF = Path(__file__).resolve().parents[2] / "conf"

# FORMATS.md §4: sr -> (n_fft, hop, mels, segment samples, upsample_rates, upsample_kernel_sizes)
TABLE = {
    "32k": (32000, 1024, 320, 80, 12800, [10, 8, 2, 2], [20, 16, 4, 4]),
    "40k": (40000, 2048, 400, 125, 12800, [10, 10, 2, 2], [16, 16, 4, 4]),
    "48k": (48000, 2048, 480, 128, 17280, [12, 10, 2, 2], [24, 20, 4, 4]),
}


@pytest.mark.parametrize("option", sorted(TABLE))
def test_model_option_matches_formats_and_builds(option):
    sr, n_fft, hop, mels, segment, rates, kernels = TABLE[option]
    cfg = OmegaConf.load(CONF / "model" / f"{option}.yaml")
    syn = cfg.synthesizer
    assert (cfg.sample_rate, cfg.hop_length, cfg.segment_samples) == (sr, hop, segment)
    assert (cfg.mel.n_fft, cfg.mel.win_length, cfg.mel.n_mels, cfg.mel.hop_length) == (
        n_fft,
        n_fft,
        mels,
        hop,
    )
    assert list(syn.upsample_rates) == rates and list(syn.upsample_kernel_sizes) == kernels
    assert syn.spec_channels == n_fft // 2 + 1 and syn.segment_size * hop == segment
    assert (syn.inter_channels, syn.hidden_channels, syn.filter_channels) == (192, 192, 768)
    assert (syn.spk_embed_dim, syn.gin_channels, syn.upsample_initial_channel) == (109, 256, 512)
    mel = instantiate(cfg.mel)
    assert isinstance(mel, MelSpectrogram) and mel.sample_rate == sr and mel.hop_length == hop
    net = instantiate(syn)  # embedder.dim / vocoder.name fall back to 768 / HiFi-GAN alone
    assert isinstance(net, Synthesizer) and net.sample_rate == sr
    assert net.hop_length == math.prod(rates) == hop
    assert net.text_enc_hidden_dim == 768 and net.vocoder == "HiFi-GAN"


def test_model_option_follows_embedder_and_vocoder_groups():
    cfg = OmegaConf.merge(
        {"embedder": {"dim": 256}, "vocoder": {"name": "HiFi-GAN"}},
        {"model": OmegaConf.load(CONF / "model" / "40k.yaml")},
    )
    assert cfg.model.synthesizer.text_enc_hidden_dim == 256
    assert cfg.model.synthesizer.sr == 40000 and cfg.model.mel.sample_rate == 40000


@pytest.mark.parametrize("option", ["hifigan", "mrf_hifigan", "refinegan"])
def test_vocoder_options_name_registered_vocoders(option):
    cfg = OmegaConf.load(CONF / "vocoder" / f"{option}.yaml")
    assert cfg.name in VOCODER_NAMES
    assert cfg.discriminator in (None, "v1", "v2", "v3")
    assert (cfg.discriminator == "v3") == (cfg.name == "RefineGAN")
