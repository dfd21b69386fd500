"""The published pretrained G/D of every (version, rate), laid out as RVC builds them, load
strictly through `pretrained=default` into what `embedder.version=<v> model=<rate>` builds.

The stand-ins for the hub files are built here from RVC's own numbers (configs/v1, configs/v2:
`REFERENCE`), not from conf/ or rvc/models/layouts.py; widths are shrunk (config overrides on
the run's side, the same numbers on the file's) so the files stay small. Rates, kernels,
spectrogram bins, hop and segment are the reference's.
"""

from __future__ import annotations

import pytest
import torch

from rvc.io.checkpoints import save_pretrained
from rvc.models.synthesizer import Synthesizer
from rvc.train.run import build_module, load_pretrained
from tests.conftest import compose
from tests.conftest import put_in_hub_cache as _put_in_cache
from tests.models.conftest import published_discriminator
from tests.models.test_model_configs import REFERENCE

# small widths, the same on the file's and the run's side
WIDTHS = {"inter_channels": 8, "hidden_channels": 16, "filter_channels": 32, "n_layers": 1,
          "upsample_initial_channel": 64, "gin_channels": 8}  # fmt: skip
D_WIDTH = 0.0625
SHRINK = [f"model.synthesizer.{k}={v}" for k, v in WIDTHS.items()]
SHRINK.append(f"model.discriminator_width={D_WIDTH}")


def hub_files(version: str, option: str, use_f0: bool) -> tuple[str, str, str]:
    """Where the published files are (docs/formats.md §2): Applio's v2 F0 set, else lj1995's."""
    f0 = "f0" if use_f0 else ""
    if version == "v2" and use_f0:
        return "IAHispano/Applio", f"Resources/pretrained_v2/f0G{option}.pth", (
            f"Resources/pretrained_v2/f0D{option}.pth")  # fmt: skip
    base = "pretrained_v2" if version == "v2" else "pretrained"
    return "lj1995/VoiceConversionWebUI", f"{base}/{f0}G{option}.pth", f"{base}/{f0}D{option}.pth"


def reference_generator(version: str, option: str, use_f0: bool) -> Synthesizer:
    """A G in RVC's layout for (version, rate), with the shrunk widths."""
    sr, n_fft, hop, _, segment, rates, kernels = REFERENCE[version, option]
    w = WIDTHS
    return Synthesizer(
        n_fft // 2 + 1, segment // hop, w["inter_channels"], w["hidden_channels"],
        w["filter_channels"], 2, w["n_layers"], 3, 0, "1", [3, 7, 11], [[1, 3, 5]] * 3, rates,
        w["upsample_initial_channel"], kernels, 109, w["gin_channels"], sr,
        use_f0=use_f0, text_enc_hidden_dim=256 if version == "v1" else 768,
    )  # fmt: skip


CASES = [(v, o, True) for v, o in sorted(REFERENCE)]
CASES += [("v1", "32k", False), ("v1", "48k", False)]  # pretrained/G32k.pth, G48k.pth


@pytest.mark.parametrize("version,option,use_f0", CASES)
def test_published_layout_loads_strictly_through_default(tmp_path, offline_hub, version, option,
                                                         use_f0):  # fmt: skip
    torch.manual_seed(0)
    g_src = reference_generator(version, option, use_f0)
    d_src = published_discriminator(version, width=D_WIDTH)
    repo, g_file, d_file = hub_files(version, option, use_f0)
    cache = tmp_path / "hub"
    _put_in_cache(cache, repo, g_file, lambda p: save_pretrained(p, g_src))
    _put_in_cache(cache, repo, d_file, lambda p: save_pretrained(p, d_src))

    cfg = compose("train", ["name=x", f"out_dir={tmp_path}", f"model={option}",
                            f"embedder.version={version}", f"model.use_f0={use_f0}",
                            "pretrained=default", f"pretrained.cache_dir={cache}",
                            *SHRINK])  # fmt: skip
    module = build_module(cfg)
    load_pretrained(cfg, module)  # train.py's start: a mismatch is a TrainError
    for got, want in ((module.gan.generator, g_src), (module.gan.discriminator, d_src)):
        a, b = got.state_dict(), want.state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    g = module.gan.generator
    assert g.config[12] == REFERENCE[version, option][5] and g.hop_length == cfg.model.hop_length
    assert offline_hub == [True, True]  # both from the (fake) hub cache, nothing downloaded
