"""Conversion fixtures: tiny voice models in our and the WebUI's format, an index, a voice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rvc.embedders.spectral import SpectralEmbedder
from rvc.index.build import FaissIndex, build_index
from rvc.io.voice_model import save_voice_model
from tests.conftest import voiced_clip
from tests.io.conftest import foreign_file, tiny_synth


def voice16k(seconds: float = 4.0, f0: float = 150.0, seed: int = 0) -> np.ndarray:
    """Harmonic 'vowels' with pauses, 16 kHz, about `seconds` long."""
    n = max(1, round(seconds / 2.2))
    audio = voiced_clip(16000, f0, segments=(1.4,) * n, pause=0.5, seed=seed)
    return audio.astype(np.float32)


@pytest.fixture
def quiet(monkeypatch):
    """Zero the synthesizer's random draws (prior noise, NSF phase and noise): deterministic
    output whatever the chunk shapes."""
    monkeypatch.setattr(torch, "randn_like", lambda x, *a, **k: torch.zeros_like(x, **k))
    monkeypatch.setattr(torch, "rand", lambda *s, **k: torch.zeros(*s, **k))


def save_ours(path: Path, version: str = "v2", use_f0: bool = True, seed: int = 0, **kw) -> Path:
    net = tiny_synth(use_f0=use_f0, version=version, seed=seed, **kw)
    save_voice_model(path, net, list(net.config), model_name=path.stem, embedder_model="spectral")
    return path


def save_foreign(
    path: Path, sr: int = 40000, version: str = "v2", use_f0: bool = True, vocoder: str = "HiFi-GAN"
) -> Path:
    """A WebUI-format file (Applio's `vocoder` key only for RefineGAN, as Applio writes it)."""
    net = tiny_synth(vocoder=vocoder, sr=sr, use_f0=use_f0, version=version)
    keys = {"info": "10epoch", "sr": f"{sr // 1000}k", "f0": int(use_f0), "version": version}
    if vocoder != "HiFi-GAN":
        keys["vocoder"] = vocoder
    torch.save(foreign_file(net, **keys), path)
    return path


@pytest.fixture(scope="session")
def voice_files(tmp_path_factory) -> Path:
    """`v.pth` (ours, tiny, 40k, spectral features) and `v.index` of other speech's features."""
    root = tmp_path_factory.mktemp("voice")
    save_ours(root / "v.pth")
    emb = SpectralEmbedder(version="v2", dim=768)
    feats = emb.embed(voice16k(6.0, f0=210.0, seed=3))
    build_index(feats, FaissIndex(), root / "v.index")
    return root


def converter(voice_files: Path, index: str | None = "auto", f0: str = "pm"):
    from rvc.infer import load_converter

    return load_converter(voice_files / "v.pth", index=index, f0=f0)
