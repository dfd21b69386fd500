"""conf/model and conf/vocoder options hold RVC's (version, rate) sizes and build what they name."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from rvc.audio.mel import MelSpectrogram
from rvc.losses.gan import GeneratorLoss, LogMelL1
from rvc.losses.multiscale_mel import MultiScaleMelLoss
from rvc.models.discriminators import MultiPeriodDiscriminator
from rvc.models.synthesizer import Synthesizer, config_list
from rvc.models.vocoders import vocoder_names
from tests.conftest import CONF_DIR, compose

CONF = Path(CONF_DIR)

# RVC WebUI configs/{v1,v2}/<rate>.json (v2 40k = v1 40k), written out here independently of
# rvc/models/layouts.py: (version, option) -> (sr, n_fft, hop, mels, segment samples,
# upsample_rates, upsample_kernel_sizes)
REFERENCE = {
    ("v1", "32k"): (32000, 1024, 320, 80, 12800, [10, 4, 2, 2, 2], [16, 16, 4, 4, 4]),
    ("v1", "40k"): (40000, 2048, 400, 125, 12800, [10, 10, 2, 2], [16, 16, 4, 4]),
    ("v1", "48k"): (48000, 2048, 480, 128, 11520, [10, 6, 2, 2, 2], [16, 16, 4, 4, 4]),
    ("v2", "32k"): (32000, 1024, 320, 80, 12800, [10, 8, 2, 2], [20, 16, 4, 4]),
    ("v2", "40k"): (40000, 2048, 400, 125, 12800, [10, 10, 2, 2], [16, 16, 4, 4]),
    ("v2", "48k"): (48000, 2048, 480, 128, 17280, [12, 10, 2, 2], [24, 20, 4, 4]),
}


@pytest.mark.parametrize("version,option", sorted(REFERENCE))
def test_model_option_follows_the_version_and_builds(version, option):
    sr, n_fft, hop, mels, segment, rates, kernels = REFERENCE[version, option]
    cfg = compose("train", ["name=x", f"model={option}", f"embedder.version={version}"]).model
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
    with torch.device("meta"):  # real sizes, no memory
        net = instantiate(syn)
    assert isinstance(net, Synthesizer) and net.sample_rate == sr
    assert net.hop_length == math.prod(rates) == hop
    assert net.text_enc_hidden_dim == (256 if version == "v1" else 768)
    assert net.vocoder == "HiFi-GAN" and net.config == config_list(syn)


def test_model_options_share_one_base():
    """Each rate option says only its rate; everything else comes from `_base` and the table."""
    for option in ("32k", "40k", "48k"):
        own = OmegaConf.load(CONF / "model" / f"{option}.yaml")
        assert set(own) == {"defaults", "sample_rate"}


def test_model_option_follows_embedder_and_vocoder_groups():
    cfg = compose("train", ["name=x", "model=40k", "embedder.version=v1"])
    assert cfg.embedder.dim == 256  # the feature width follows the version too
    assert cfg.model.synthesizer.text_enc_hidden_dim == 256
    assert cfg.model.synthesizer.sr == 40000 and cfg.model.mel.sample_rate == 40000
    bad = compose("train", ["name=x", "model=48k", "embedder.version=v3"])
    with pytest.raises(Exception, match="unknown RVC version 'v3'"):
        bad.model.synthesizer.upsample_rates  # noqa: B018


V1_PERIODS, V2_PERIODS, V3_PERIODS = (
    [2, 3, 5, 7, 11, 17],
    [2, 3, 5, 7, 11, 17, 23, 37],
    [2, 3, 5, 7, 11],
)


def _periods(d: MultiPeriodDiscriminator) -> list[int]:
    return [m.period for m in d.discriminators if hasattr(m, "period")]


@pytest.mark.parametrize(
    "option,periods,mel_fn",
    [
        ("hifigan", V2_PERIODS, LogMelL1),
        ("mrf_hifigan", V2_PERIODS, LogMelL1),
        ("refinegan", V3_PERIODS, MultiScaleMelLoss),
    ],
)
def test_vocoder_options_build_their_discriminator_and_loss(tmp_path, option, periods, mel_fn):
    cfg = compose("train", ["name=x", f"vocoder={option}", f"out_dir={tmp_path}"])
    assert cfg.vocoder.name in vocoder_names()
    d = instantiate(cfg.vocoder.discriminator)
    assert isinstance(d, MultiPeriodDiscriminator) and _periods(d) == periods
    assert len(d.discriminators) == 1 + len(periods) + (3 if option == "refinegan" else 0)
    loss = instantiate(cfg.vocoder.generator_loss)
    assert isinstance(loss, GeneratorLoss) and isinstance(loss.waveform_terms["mel"], mel_fn)
    assert loss.weights == {"mel": 15.0 if option == "refinegan" else 45.0, "adv": 1.0,
                            "fm": 2.0, "kl": 1.0}  # fmt: skip
    g = instantiate(cfg.model.synthesizer, **cfg.vocoder.kwargs)
    assert g.vocoder == cfg.vocoder.name
    # a v1 embedder picks the v1 period set for the HiFi-GAN family; RefineGAN keeps its own
    v1 = compose("train", ["name=x", f"vocoder={option}", "embedder.version=v1",
                           "embedder.dim=256", f"out_dir={tmp_path}"])  # fmt: skip
    want = V3_PERIODS if option == "refinegan" else V1_PERIODS
    assert _periods(instantiate(v1.vocoder.discriminator)) == want


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_debug_model_is_tiny_with_real_40k_framing(version):
    cfg = compose("train", ["name=x", "model=debug", f"embedder.version={version}"]).model
    net = instantiate(cfg.synthesizer)
    assert net.sample_rate == 40000 and net.hop_length == cfg.hop_length == 400
    assert sum(p.numel() for p in net.parameters()) < 500_000
    assert net.segment_size * net.hop_length == cfg.segment_samples
