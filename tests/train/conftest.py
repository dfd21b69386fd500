"""Training fixtures: the real configs with model=debug, and a tiny store made by extract.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.conftest import compose, voiced_clip, write

# what a store made with extract's FAST options needs in the train config
STORE_OPTIONS = ["model=debug", "f0=pm", "embedder=spectral"]


def train_cfg(root: Path, *overrides: str, name: str = "t"):
    """The real train config for the store `name` under `root`, tiny and on CPU."""
    return compose(
        "train",
        [
            f"name={name}",
            f"paths.root={root}",
            f"out_dir={root / 'experiments' / name}",
            *STORE_OPTIONS,
            "pretrained=none",
            "device.num_workers=0",
            "data.batch_size=4",
            "callbacks.progress=null",
            "callbacks.evaluation=null",  # its own test turns it on (tests/eval)
            "trainer.enable_model_summary=false",
            "trainer.log_every_n_steps=1",
            *overrides,
        ],
    )


def batch_for(cfg, b: int = 2, frames: int = 50, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random batch in the DataModule's layout for the config's model."""
    g = torch.Generator().manual_seed(seed)
    hop, dim = cfg.model.hop_length, cfg.embedder.dim
    lengths = torch.tensor([frames] + [frames - 7] * (b - 1))
    t = torch.arange(frames * hop) / cfg.model.sample_rate
    wave = 0.3 * torch.sin(2 * torch.pi * 150.0 * t).repeat(b, 1) + 0.01 * torch.randn(
        b, frames * hop, generator=g
    )
    for i, n in enumerate(lengths.tolist()):
        wave[i, n * hop :] = 0
    pitchf = torch.full((b, frames), 150.0)
    pitchf[:, :5] = 0
    return {
        "phone": torch.randn(b, frames, dim, generator=g),
        "phone_lengths": lengths,
        "pitch": torch.full((b, frames), 60, dtype=torch.long),
        "pitchf": pitchf,
        "wave": wave.unsqueeze(1),
        "wave_lengths": lengths * hop,
        "sid": torch.zeros(b, dtype=torch.long),
    }


def build_gan(cfg):
    """The GAN of the config (generator, the vocoder's D and losses)."""
    from rvc.train.step import build_gan as build

    return build(cfg)


@pytest.fixture(scope="session")
def store_root(tmp_path_factory) -> Path:
    """A tiny store `experiments/t` (40 kHz, pm F0, spectral features) under the returned root."""
    from rvc.extract.run import run

    root = tmp_path_factory.mktemp("train_store")
    voice = root / "voice"
    for i, f0 in enumerate((110.0, 140.0, 180.0, 220.0)):
        write(voice / f"clip{i}.wav", voiced_clip(40000, f0, seed=i), 40000)
    run(
        compose(
            "extract",
            ["name=t", f"paths.root={root}", f"inputs=[{voice}]", *STORE_OPTIONS,
             "device.num_workers=1"],
        )
    )  # fmt: skip
    return root
