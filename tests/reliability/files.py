"""`assert_every_file_loads`: the "no truncated file" check of an experiment folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

CHECKED = (".npy", ".json", ".wav", ".ckpt", ".pth", ".index")


def _load(path: Path) -> None:
    suffix = path.suffix
    if suffix == ".npy":
        np.load(path, allow_pickle=False)
    elif suffix == ".json":
        json.loads(path.read_text())
    elif suffix == ".wav":
        audio, _ = sf.read(path, dtype="float32")
        assert audio.size > 0, "no samples"
    elif suffix == ".ckpt":  # Lightning's checkpoint: our own file, weights and loop state
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        assert "state_dict" in ckpt, "no state_dict"
    elif suffix == ".pth":
        from rvc.io.safe_load import load_pth

        load_pth(path)
    elif suffix == ".index":
        from rvc.index import read_index

        read_index(path)


def assert_every_file_loads(folder: Path) -> dict[str, int]:
    """Every finished .npy/.json/.wav/.ckpt/.pth/.index under `folder` loads whole.

    Hidden files are skipped: they are the temp files of atomic writes (a kill may leave one,
    the next run removes them) and `.lock`. Returns how many files of each kind were read.
    """
    counts = dict.fromkeys(CHECKED, 0)
    bad = []
    for path in sorted(folder.rglob("*")):
        if path.suffix not in CHECKED or not path.is_file() or path.name.startswith("."):
            continue
        try:
            _load(path)
        except Exception as e:  # noqa: BLE001 - any failure to load is a truncated/damaged file
            bad.append(f"{path.relative_to(folder)}: {type(e).__name__}: {e}")
        counts[path.suffix] += 1
    assert not bad, "files that do not load:\n" + "\n".join(bad)
    return counts
