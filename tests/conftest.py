"""Shared fixtures: small synthetic voiced clips and the real Hydra configs."""

from __future__ import annotations

import functools
import http.server
import os
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from rvc.registry import names as options  # noqa: F401  (tests list options with it)
from rvc.registry import package_conf

# the one conf path of the tests: the package's own (rvc/conf, what the entry points compose);
# list a group's options with `options(group)` (the registry's: shared `_bases` left out)
CONF_DIR = str(package_conf())

# 2 threads, as CI's 2 cores; RVC_TEST_THREADS=1 runs the suite on one (the suite holds on both)
torch.set_num_threads(int(os.environ.get("RVC_TEST_THREADS", "2")))


def voiced_clip(
    sr: int = 16000,
    f0: float = 150.0,
    segments: tuple[float, ...] = (1.8, 2.2),
    pause: float = 0.6,
    seed: int = 0,
    amp: float = 0.5,
) -> np.ndarray:
    """Harmonic 'vowels' of the given lengths separated by silent pauses (with a noise floor)."""
    rng = np.random.default_rng(seed)
    parts = [np.zeros(int(0.3 * sr))]
    for i, d in enumerate(segments):
        t = np.arange(int(d * sr)) / sr
        f = f0 * (1 + 0.05 * np.sin(2 * np.pi * 0.7 * t + i))  # gentle pitch movement
        phase = 2 * np.pi * np.cumsum(f) / sr
        x = sum(np.sin(k * phase) / k for k in range(1, 8))
        env = np.minimum(1, np.minimum(t, t[::-1]) / 0.05)
        parts += [amp * 0.6 * x * env, np.zeros(int(pause * sr))]
    y = np.concatenate(parts)
    y += 1e-4 * rng.standard_normal(len(y))  # a noise floor far below -42 dB
    return y.astype(np.float32)


def write(path: Path, audio: np.ndarray, sr: int, subtype: str = "PCM_16") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio, sr, subtype=subtype)
    return path


def compose(config_name: str | None, overrides: list[str], return_hydra_config: bool = False):
    """Compose a real config from rvc/conf (as the entry points do); `config_name=None` and
    `+group=option` overrides compose one group alone."""
    from hydra import compose as hcompose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return hcompose(
            config_name=config_name,
            overrides=overrides,
            return_hydra_config=return_hydra_config,
        )


@functools.cache
def model_option(name: str, version: str = "v2"):
    """A `conf/model` option composed with its defaults (`_base`) for an embedder `version`,
    resolved: the `model` node as train.py sees it."""
    from omegaconf import OmegaConf

    cfg = compose("train", ["name=x", f"model={name}", f"embedder.version={version}"])
    node = cfg.model
    OmegaConf.resolve(node)
    return node


def debug_config(**overrides) -> list:
    """The 18-item config of `conf/model/debug.yaml` (tiny, 40 kHz framing), items replaced by
    name: the one tiny size table the tests share."""
    from rvc.models.synthesizer import config_list

    return config_list(model_option("debug").synthesizer, **overrides)


@pytest.fixture
def config(tmp_path):
    """The config fixture: `config("train", "name=x", ...)` composes a real config (as `compose`)
    and points its `out_dir`, when it has one and no override set it, under `tmp_path`."""
    from omegaconf import open_dict

    def make(config_name: str | None, *overrides: str, return_hydra_config: bool = False):
        cfg = compose(config_name, list(overrides), return_hydra_config)
        if "out_dir" in cfg and not any(o.startswith("out_dir=") for o in overrides):
            with open_dict(cfg):
                cfg.out_dir = str(tmp_path / "out")
        return cfg

    return make


@pytest.fixture
def one_thread():
    """Torch on one thread: tiny models run fastest so; more threads only contend on a shared
    CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def voice_dir(tmp_path: Path) -> Path:
    """A folder of three short voiced wav clips at 40 kHz."""
    d = tmp_path / "voice"
    for i, f0 in enumerate((120.0, 160.0, 210.0)):
        write(d / f"clip{i}.wav", voiced_clip(40000, f0, seed=i), 40000)
    return d


@pytest.fixture
def http_root(tmp_path, monkeypatch):
    """A local HTTP server over `tmp_path/www`: (that folder, its base URL)."""
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    root = tmp_path / "www"
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def offline_hub(monkeypatch):
    """Never touch the network: every hub call may only read the local cache."""
    import huggingface_hub

    calls = []
    real = huggingface_hub.hf_hub_download

    def cache_only(*args, **kwargs):
        calls.append(kwargs.get("local_files_only"))
        kwargs["local_files_only"] = True
        return real(*args, **kwargs)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", cache_only)
    return calls


def put_in_hub_cache(cache: Path, repo_id: str, filename: str, src_writer) -> Path:
    """Lay out a file as huggingface_hub caches it: refs/main -> snapshots/<commit>/<file>."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    target = repo / "snapshots" / commit / filename
    target.parent.mkdir(parents=True, exist_ok=True)
    src_writer(target)
    return target
