"""A small store made by the real extraction, shared by the data tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from rvc.extract.run import run
from tests.conftest import compose, voiced_clip, write

SR, HOP = 40000, 400


@pytest.fixture(scope="session")
def store_dir(tmp_path_factory) -> Path:
    """A store of ~8 slices from two speakers (folders 0 and 1), extracted once."""
    root = tmp_path_factory.mktemp("dm")
    voice = root / "voice"
    for i, (spk, f0) in enumerate([(0, 120.0), (0, 160.0), (1, 210.0), (1, 180.0)]):
        write(voice / str(spk) / f"c{i}.wav", voiced_clip(SR, f0, seed=i), SR)
    overrides = ["name=t", f"paths.root={root}", f"inputs=[{voice}]"]
    run(compose("extract", [*overrides, "f0=pm", "embedder=spectral", "device.num_workers=1"]))
    return root / "experiments" / "t"
