"""Untrusted .pth files: weights-only loading, refusal of code, clear errors for damage."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch

from rvc.io.safe_load import (
    CorruptModelFileError,
    ModelFileError,
    UnsafeModelFileError,
    load_pth,
)


class _Exploit:
    """Unpickling this would run a shell command that creates a marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


@pytest.mark.parametrize("fmt", ["zip", "legacy", "bare"])
def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path, fmt):
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pth"
    payload = {"weight": {"a": torch.zeros(2)}, "config": _Exploit(marker)}
    if fmt == "bare":  # a plain pickle (protocol 5), not written by torch at all
        path.write_bytes(pickle.dumps(payload))
    else:  # the zip format of torch >= 1.6, and the older one
        torch.save(payload, path, _use_new_zipfile_serialization=fmt == "zip")
    expected = ModelFileError if fmt == "bare" else UnsafeModelFileError
    with pytest.raises(expected, match="evil.pth") as err:
        load_pth(path)
    if fmt != "bare":  # names what was blocked
        assert "system" in str(err.value)
    assert not marker.exists()


def test_plain_data_and_numpy_scalars_load(tmp_path):
    path = tmp_path / "ok.pth"
    torch.save(
        {"weight": {"a": torch.ones(3, dtype=torch.float16)}, "dataset_length": np.float64(12.5)},
        path,
    )
    data = load_pth(path)
    assert data["weight"]["a"].dtype == torch.float16 and float(data["dataset_length"]) == 12.5


def test_truncated_empty_and_foreign_files_give_clear_errors(tmp_path):
    good = tmp_path / "good.pth"
    torch.save({"model": {"w": torch.randn(256, 256)}}, good)
    blob = good.read_bytes()
    (tmp_path / "trunc.pth").write_bytes(blob[: len(blob) // 2])
    (tmp_path / "empty.pth").write_bytes(b"")
    (tmp_path / "notes.pth").write_text("this is not a model\n")
    for name in ("trunc.pth", "empty.pth", "notes.pth"):
        with pytest.raises(CorruptModelFileError, match=name):
            load_pth(tmp_path / name)
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        load_pth(tmp_path / "missing.pth")
    torch.testing.assert_close(
        load_pth(good)["model"]["w"], torch.load(good, weights_only=True)["model"]["w"]
    )
