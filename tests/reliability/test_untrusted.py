"""Untrusted `.pth` and `.index` files through every reader a user reaches: truncated, of another
format, or crafted to run code. Each is refused with a documented error naming the file, and
runs nothing (the crafted ones would create a marker file).

`tests/io/test_safe_load.py` and `tests/index/test_search.py` hold the readers' own cases; here
the same damage goes through the entry points (voice model, checkpoint, pretrained, converter,
training) and into the other reader (a pickle named `.index`, an index named `.pth`).
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import faiss
import numpy as np
import pytest
import torch

from rvc.index import FaissIndex, IndexFileError, build_index, read_index
from rvc.infer.load import ConverterLoadError, load_converter
from rvc.io.checkpoints import load_model_state
from rvc.io.safe_load import ModelFileError, UnsafeModelFileError, load_pth
from rvc.io.voice_model import load_voice_model, read_voice_model
from tests.infer.conftest import save_ours


class _Exploit:
    """Unpickling this runs a shell command that creates `marker`."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


class _ExecExploit:
    """The same through `builtins.exec` (another global a blocklist could miss)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()",))


def _good_voice(folder: Path) -> Path:
    return save_ours(folder / "good.pth")


def _good_index(folder: Path) -> Path:
    feats = np.random.default_rng(0).standard_normal((300, 768)).astype(np.float32)
    return build_index(feats, FaissIndex(), folder / "good.index").path


def _write(kind: str, path: Path, marker: Path, folder: Path) -> Path:
    """A bad file of `kind` at `path`."""
    payload = {"weight": {"a": torch.zeros(2)}, "config": _Exploit(marker), "sr": "40k"}
    if kind == "crafted-zip":  # torch >= 1.6's zip format, the exploit inside data.pkl
        torch.save(payload, path)
    elif kind == "crafted-legacy":  # torch's older format
        torch.save(payload, path, _use_new_zipfile_serialization=False)
    elif kind == "crafted-exec":
        torch.save({"model": {"w": torch.zeros(1)}, "x": _ExecExploit(marker)}, path)
    elif kind == "crafted-bare":  # a plain pickle, not written by torch
        path.write_bytes(pickle.dumps(payload, protocol=4))
    elif kind == "truncated-pth":
        blob = _good_voice(folder).read_bytes()
        path.write_bytes(blob[: len(blob) // 3])
    elif kind == "truncated-index":
        blob = _good_index(folder).read_bytes()
        path.write_bytes(blob[: len(blob) // 3])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "index":  # a real faiss index (another format for a .pth)
        path.write_bytes(_good_index(folder).read_bytes())
    elif kind == "pth":  # a real voice model (another format for an .index)
        path.write_bytes(_good_voice(folder).read_bytes())
    elif kind == "npy":
        np.save(path.with_suffix(".npy"), np.zeros((4, 768), np.float32))
        path.with_suffix(".npy").rename(path)
    elif kind == "json":
        path.write_text(json.dumps({"weight": {}, "config": [0] * 18}))
    elif kind == "html":  # what a failed download saves
        path.write_text("<!DOCTYPE html><html><body>404 Not Found</body></html>")
    elif kind == "random":
        path.write_bytes(np.random.default_rng(1).bytes(5000))
    else:
        raise AssertionError(kind)
    return path


PTH_KINDS = ["crafted-zip", "crafted-legacy", "crafted-exec", "crafted-bare", "truncated-pth",
             "empty", "index", "npy", "json", "html", "random"]  # fmt: skip
INDEX_KINDS = ["crafted-zip", "crafted-bare", "truncated-index", "empty", "pth", "npy", "json",
               "html", "random"]  # fmt: skip

PTH_READERS = {
    "load_pth": load_pth,
    "read_voice_model": read_voice_model,
    "load_voice_model": load_voice_model,
    "load_model_state": load_model_state,
}


@pytest.mark.parametrize("kind", PTH_KINDS)
def test_bad_pth_files_are_refused_by_every_reader(tmp_path, kind):
    marker = tmp_path / "PWNED"
    path = _write(kind, tmp_path / "bad voice.pth", marker, tmp_path)
    for name, reader in PTH_READERS.items():
        with pytest.raises(ModelFileError, match="bad voice.pth") as err:
            reader(path)
        assert "\n" not in str(err.value).split(". ")[0], name  # a one-line reason first
        if kind.startswith("crafted") and kind != "crafted-bare":
            assert isinstance(err.value, UnsafeModelFileError), name
            assert "refused to load" in str(err.value)
        assert not marker.exists(), f"{name} ran code from {kind}"
    with pytest.raises(ConverterLoadError, match="bad voice.pth"):
        load_converter(path, index=None, f0="pm")
    assert not marker.exists()


@pytest.mark.parametrize("kind", INDEX_KINDS)
def test_bad_index_files_are_refused(tmp_path, kind):
    marker = tmp_path / "PWNED"
    path = _write(kind, tmp_path / "bad voice.index", marker, tmp_path)
    with pytest.raises(IndexFileError, match="bad voice.index") as err:
        read_index(path)
    assert "\n" not in str(err.value) and ".cpp" not in str(err.value)
    voice = _good_voice(tmp_path)
    with pytest.raises(ConverterLoadError, match="bad voice.index"):
        load_converter(voice, index=path, f0="pm")
    # found beside the model by name (index=auto), it is refused the same way
    path.rename(tmp_path / "good.index")
    with pytest.raises(ConverterLoadError, match="good.index"):
        load_converter(voice, index="auto", f0="pm")
    assert not marker.exists()


def test_the_good_files_of_these_tests_do_load(tmp_path):
    """The contrast: the files the bad ones are cut from or renamed from are fine."""
    voice, index = _good_voice(tmp_path), _good_index(tmp_path)
    assert read_voice_model(voice).sample_rate == 40000
    assert read_index(index).ntotal == 300 and isinstance(read_index(index), faiss.Index)
    conv = load_converter(voice, index=index, f0="pm")
    assert conv.index is not None and conv.index.ntotal == 300


@pytest.mark.parametrize("kind", ["crafted-zip", "truncated-pth", "index"])
def test_training_refuses_a_bad_pretrained_file(tmp_path, store_root, kind):
    from rvc.train.run import TrainError, run
    from tests.train.conftest import train_cfg

    marker = tmp_path / "PWNED"
    path = _write(kind, tmp_path / "G_bad.pth", marker, tmp_path)
    cfg = train_cfg(
        store_root, f"out_dir={tmp_path / 'run'}", "pretrained=custom",
        f"pretrained.generator={path}", "pretrained.discriminator=null",
    )  # fmt: skip
    with pytest.raises(TrainError, match="G_bad.pth"):
        run(cfg)
    assert not marker.exists()
    assert not (tmp_path / "run" / "checkpoints").exists()  # refused before training
