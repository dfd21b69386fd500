"""The "Extending" recipe for an F0 method or an embedder, followed by a test: two files (a module
and its YAML in `<root>/conf/<group>/`), found through the search path, then the whole path:
extract → train (tiny) → export the .pth → load it → convert."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from tests.conftest import compose

# one batch of one epoch of the tiny model: the path, not the quality
FAST_TRAIN = [
    "model=debug",
    "pretrained=none",
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=1",
    "+trainer.limit_val_batches=1",
    "val_audio_samples=0",
    "device.num_workers=0",
    "data.batch_size=4",
    "callbacks.progress=null",
    "callbacks.evaluation=null",
    "callbacks.index=null",
    "trainer.enable_model_summary=false",
]


def add_option(root: Path, group: str, name: str, module: str, yaml: str, monkeypatch) -> Path:
    """Write the option's two files under `root` and put them on the search paths: the module
    on sys.path, `<root>/conf` in the registry (as `hydra.searchpath` does inside an app)."""
    from rvc import registry

    (root / f"{name}.py").write_text(textwrap.dedent(module))
    conf = root / "conf"
    (conf / group).mkdir(parents=True)
    (conf / group / f"{name}.yaml").write_text(textwrap.dedent(yaml))
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setattr(registry, "_EXTRA", [])  # this test's folder only, gone after it
    registry.add_search_path(conf)
    return conf


def extract_train_convert(root: Path, voice_dir: Path, conf: Path, f0: str, embedder: str):
    """The stages in process, as the entry points run them; returns (voice model, converter,
    converted audio)."""
    from rvc.extract.run import run as extract
    from rvc.infer import load_converter
    from rvc.io.voice_model import load_voice_model
    from rvc.train.run import run as train
    from tests.infer.conftest import voice16k

    common = [f"hydra.searchpath=[file://{conf}]", "name=toy", f"paths.root={root}",
              f"f0={f0}", f"embedder={embedder}", "model=debug"]  # fmt: skip
    extract(compose("extract", [*common, f"inputs=[{voice_dir}]", "device.num_workers=1"]))
    over = [*common[:-1], f"out_dir={root / 'run'}", *FAST_TRAIN]
    res = train(compose("train", over))
    vm = load_voice_model(res.voice_model)
    conv = load_converter(res.voice_model, index=None, f0=f0)  # embedder: the .pth's, by name
    out = conv.convert(voice16k(1.5), progress=False)
    assert out.dtype == np.float32 and len(out) > 0 and np.isfinite(out).all()
    return vm, conv, out
