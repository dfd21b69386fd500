"""`train.py embedder.version=v1 model=32k|48k` with every other default: the run builds RVC's
v1 network, which the published v1 pretrained (`pretrained/f0G48k.pth` …) fits tensor for tensor.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from rvc.io.checkpoints import check_state_dict, save_pretrained
from rvc.models.synthesizer import Synthesizer
from rvc.train.run import build_module, load_pretrained
from tests.conftest import compose
from tests.conftest import put_in_hub_cache as _put_in_cache
from tests.models.conftest import published_discriminator
from tests.models.test_model_configs import REFERENCE

OPTIONS = ["32k", "48k"]
ROOT = Path(__file__).resolve().parents[2]


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
    assert g.segment_size * hop == segment
    assert [m.period for m in d.discriminators[1:]] == [2, 3, 5, 7, 11, 17]  # v1 periods
    with torch.device("meta"):  # the published files' shapes, without their 300 MB
        g_ref, d_ref = _published_g(option), published_discriminator("v1")
    # the check a strict load makes: every name and shape, both ways
    check_state_dict(g, g_ref.state_dict(), f"pretrained/f0G{option}.pth")
    check_state_dict(d, d_ref.state_dict(), f"pretrained/f0D{option}.pth")


def test_train_py_resolves_the_v1_layout(tmp_path):
    """The entry point registers the `${layout:...}` resolver before Hydra resolves."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "name=x", "embedder.version=v1", "model=48k",
         "--cfg", "job", "--resolve"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    cfg = yaml.safe_load(out.stdout)
    assert cfg["model"]["synthesizer"]["upsample_rates"] == REFERENCE["v1", "48k"][5]
    assert cfg["model"]["segment_samples"] == 11520 and cfg["embedder"]["dim"] == 256


@pytest.mark.slow
@pytest.mark.parametrize("option", OPTIONS)
def test_v1_defaults_load_full_size_published_files(tmp_path, offline_hub, option):
    """The same through the hub cache with full-size files (~400 MB written and read)."""
    torch.manual_seed(0)
    g_src, d_src = _published_g(option), published_discriminator("v1")
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


@pytest.mark.slow
def test_v1_48k_training_starts_from_the_published_pretrained(tmp_path, offline_hub):
    """extract.py + train.py with `embedder.version=v1 model=48k` (and small widths, on both
    sides): a v1 48k store, one epoch from the v1 pretrained, a v1 48k voice model."""
    from rvc.extract.run import run as extract
    from rvc.io.voice_model import read_voice_model
    from rvc.train.run import run as train
    from tests.conftest import voiced_clip, write
    from tests.io.test_pretrained_layouts import D_WIDTH, SHRINK, reference_generator

    torch.manual_seed(0)
    cache = tmp_path / "hub"
    repo = "lj1995/VoiceConversionWebUI"
    g_src = reference_generator("v1", "48k", True)
    d_src = published_discriminator("v1", width=D_WIDTH)
    _put_in_cache(cache, repo, "pretrained/f0G48k.pth", lambda p: save_pretrained(p, g_src))
    _put_in_cache(cache, repo, "pretrained/f0D48k.pth", lambda p: save_pretrained(p, d_src))
    for i, f0 in enumerate((120.0, 180.0)):
        write(tmp_path / "voice" / f"c{i}.wav", voiced_clip(48000, f0, seed=i), 48000)
    ask = ["name=v1", f"paths.root={tmp_path}", "model=48k", "embedder=spectral",
           "embedder.version=v1", "f0=pm"]  # fmt: skip
    extract(compose("extract", [*ask, f"inputs=[{tmp_path / 'voice'}]", "device.num_workers=1"]))
    cfg = compose("train", [*ask, f"out_dir={tmp_path / 'run'}", f"pretrained.cache_dir={cache}",
                            *SHRINK, "trainer.max_epochs=1", "data.batch_size=2",
                            "device.num_workers=0", "callbacks.progress=null",
                            "callbacks.evaluation=null", "callbacks.lr_monitor=null", "logger=none",
                            "trainer.enable_model_summary=false"])  # fmt: skip
    res = train(cfg)
    assert res.epochs == 1 and res.steps > 0
    vm = read_voice_model(res.voice_model)
    assert (vm.sample_rate, vm.version, vm.use_f0) == (48000, "v1", True)
    assert vm.config[12] == [10, 6, 2, 2, 2] and vm.config[14] == [16, 16, 4, 4, 4]
