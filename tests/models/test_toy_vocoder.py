"""docs' "add a vocoder" recipe, followed with a toy: exactly two files (the module and its
`conf/vocoder/<x>.yaml`) outside the package, then extract -> train -> export -> detect ->
convert. A vocoder that misses a piece fails when the run is built, not an epoch later."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from rvc import registry
from tests.conftest import compose, voiced_clip, write

TOY_MODULE = '''
"""A 2-layer vocoder: a conv to `upsample_initial_channel`, a transposed conv to the wave."""
import math

import torch
from torch import nn

from rvc.models.vocoders.base import Vocoder, weight_shape


class ToyVocoder(Vocoder):
    state_markers = ("toy_in.",)  # the dec.* names only this vocoder has

    @classmethod
    def read_state(cls, state):
        return {"upsample_initial_channel": weight_shape(state, "toy_in")[0]}

    def __init__(self, initial_channel, resblock_kernel_sizes, resblock_dilation_sizes,
                 upsample_rates, upsample_initial_channel, upsample_kernel_sizes,
                 gin_channels=0, sr=None):
        super().__init__()
        hop = math.prod(upsample_rates)
        self.toy_in = nn.Conv1d(initial_channel, upsample_initial_channel, 3, padding=1)
        self.toy_out = nn.ConvTranspose1d(upsample_initial_channel, 1, hop, stride=hop)

    def forward(self, x, f0=None, g=None):
        return torch.tanh(self.toy_out(torch.relu(self.toy_in(x))))
'''

TOY_YAML = """
defaults:
  - _base
  - _self_

name: Toy
decoder: {module}.ToyVocoder
generator_loss:
  waveform_terms:
    mel:
      _target_: rvc.losses.gan.LogMelL1
      mel: ${{model.mel}}
"""


def add_toy(root: Path, monkeypatch, module: str = "toy_vocoder", source: str = TOY_MODULE):
    """The two files of the recipe under `root`, on the import and registry search paths;
    returns the Hydra override that puts `root/conf` on an app's search path."""
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    (root / "conf" / "vocoder").mkdir(parents=True)
    (root / "conf" / "vocoder" / "toy.yaml").write_text(TOY_YAML.format(module=module))
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setattr(registry, "_EXTRA", [])  # this test's search path only, undone after
    registry.add_search_path(root / "conf")
    return f"hydra.searchpath=[file://{root / 'conf'}]"


def _train_overrides(work: Path, searchpath: str) -> list[str]:
    return [
        searchpath, "name=toy", f"paths.root={work}", f"out_dir={work / 'run'}", "model=debug",
        "f0=pm", "embedder=spectral", "vocoder=toy", "pretrained=none", "device.num_workers=0",
        "data.batch_size=4", "callbacks.progress=null", "callbacks.evaluation=null",
        "trainer.enable_model_summary=false", "trainer.max_epochs=1",
    ]  # fmt: skip


def test_toy_vocoder_goes_through_extract_train_export_detect_convert(
    tmp_path, tmp_path_factory, monkeypatch
):
    from rvc.extract.run import run as extract
    from rvc.infer.load import load_converter
    from rvc.io.detect import detect_generator
    from rvc.io.voice_model import read_voice_model
    from rvc.models.vocoders import vocoder_names
    from rvc.train.run import run as train

    searchpath = add_toy(tmp_path, monkeypatch)
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [
        "toy.yaml",
        "toy_vocoder.py",
    ]
    assert "Toy" in vocoder_names()

    work = tmp_path_factory.mktemp("toy_run")  # audio, store and run: not the recipe's files
    for i, f0 in enumerate((120.0, 200.0)):
        write(work / "voice" / f"clip{i}.wav", voiced_clip(40000, f0, seed=i), 40000)
    extract(compose("extract", [searchpath, "name=toy", f"paths.root={work}",
                                f"inputs=[{work / 'voice'}]", "model=debug", "f0=pm",
                                "embedder=spectral", "device.num_workers=0"]))  # fmt: skip
    res = train(compose("train", _train_overrides(work, searchpath)))

    vm = read_voice_model(res.voice_model)
    assert vm.vocoder == "Toy" and vm.use_f0
    found = detect_generator(vm.weights, sample_rate=vm.sample_rate)  # from the tensors alone
    assert (found.vocoder, found.version, found.config[13]) == ("Toy", "v2", vm.config[13])

    conv = load_converter(res.voice_model, index=None, f0="pm", embedder="spectral")
    out = conv.convert(voiced_clip(16000, 150.0, segments=(0.8,)), progress=False)
    assert len(out) > 0 and np.isfinite(out).all() and np.abs(out).max() > 0


def test_a_vocoder_without_markers_fails_when_the_run_is_built(tmp_path, monkeypatch):
    from hydra.errors import InstantiationException

    from rvc.train.step import build_gan

    source = TOY_MODULE.replace('state_markers = ("toy_in.",)', "state_markers = ()")
    searchpath = add_toy(tmp_path, monkeypatch, module="toy_unmarked", source=source)
    cfg = compose("train", _train_overrides(tmp_path, searchpath))
    # the generator cannot even be built (Hydra wraps the VocoderError)
    with pytest.raises(
        InstantiationException, match="toy_unmarked.ToyVocoder has no `state_markers`"
    ):
        build_gan(cfg)


def test_a_vocoder_whose_state_reads_wrong_fails_when_the_run_is_built(tmp_path, monkeypatch):
    from rvc.io.detect import ModelDetectionError
    from rvc.train.step import build_gan

    source = TOY_MODULE.replace(
        'weight_shape(state, "toy_in")[0]', '2 * weight_shape(state, "toy_in")[0]'
    )
    searchpath = add_toy(tmp_path, monkeypatch, module="toy_misread", source=source)
    cfg = compose("train", _train_overrides(tmp_path, searchpath))
    with pytest.raises(ModelDetectionError, match="upsample_initial_channel 128 .built 64"):
        build_gan(cfg)
