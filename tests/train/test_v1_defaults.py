"""`train.py embedder.version=v1 model=32k|48k` with every other default: the run builds RVC's
v1 network, which the published v1 pretrained (`pretrained/f0G48k.pth` …) fits tensor for tensor.
"""

from __future__ import annotations

import pytest
import torch

from rvc.io.checkpoints import check_state_dict, save_pretrained
from rvc.models.discriminators import MultiPeriodDiscriminator
from rvc.models.synthesizer import Synthesizer
from rvc.train.run import build_module, load_pretrained
from tests.conftest import compose
from tests.conftest import put_in_hub_cache as _put_in_cache
from tests.models.test_model_configs import REFERENCE

OPTIONS = ["32k", "48k"]


def _defaults(tmp_path, option: str, *more: str):
    """train.py's config as a user asks for a v1 model: nothing but the version and the rate."""
    return compose("train", ["name=x", f"out_dir={tmp_path}", "embedder.version=v1",
                             f"model={option}", *more])  # fmt: skip


def _published_g(option: str) -> Synthesizer:
    """RVC's full-size v1 F0 generator for `option` (configs/v1/<rate>.json)."""
    sr, n_fft, hop, _, segment, rates, kernels = REFERENCE["v1", option]
    return Synthesizer(n_fft // 2 + 1, segment // hop, 192, 192, 768, 2, 6, 3, 0, "1",
                       [3, 7, 11], [[1, 3, 5]] * 3, rates, 512, kernels, 109, 256, sr,
                       use_f0=True, text_enc_hidden_dim=256)  # fmt: skip


@pytest.mark.parametrize("option", OPTIONS)
def test_v1_defaults_compose_and_build_the_published_layout(tmp_path, option):
    cfg = _defaults(tmp_path, option)
    sr, n_fft, hop, mels, segment, rates, kernels = REFERENCE["v1", option]
    assert cfg.embedder.dim == 256 and cfg.model.segment_samples == segment
    assert cfg.data.hop_length == hop and cfg.model.mel.n_mels == mels
    module = build_module(cfg)
    g, d = module.gan.generator, module.gan.discriminator
    assert g.sample_rate == sr and g.hop_length == hop and g.config[12] == rates
    assert g.segment_size * hop == segment and d.version == "v1"
    with torch.device("meta"):  # the published files' shapes, without their 300 MB
        g_ref, d_ref = _published_g(option), MultiPeriodDiscriminator("v1")
    # the check a strict load makes: every name and shape, both ways
    check_state_dict(g, g_ref.state_dict(), f"pretrained/f0G{option}.pth")
    check_state_dict(d, d_ref.state_dict(), f"pretrained/f0D{option}.pth")


@pytest.mark.slow
@pytest.mark.parametrize("option", OPTIONS)
def test_v1_defaults_load_full_size_published_files(tmp_path, offline_hub, option):
    """The same through the hub cache with full-size files (~400 MB written and read)."""
    torch.manual_seed(0)
    g_src, d_src = _published_g(option), MultiPeriodDiscriminator("v1")
    cache = tmp_path / "hub"
    repo = "lj1995/VoiceConversionWebUI"
    _put_in_cache(cache, repo, f"pretrained/f0G{option}.pth", lambda p: save_pretrained(p, g_src))
    _put_in_cache(cache, repo, f"pretrained/f0D{option}.pth", lambda p: save_pretrained(p, d_src))
    cfg = _defaults(tmp_path, option, f"pretrained.cache_dir={cache}")
    module = build_module(cfg)
    load_pretrained(cfg, module)
    for got, want in ((module.gan.generator, g_src), (module.gan.discriminator, d_src)):
        a, b = got.state_dict(), want.state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
