"""Conversion memory does not grow with the input's length (RVC WebUI issue #2774).

oneDNN caches primitives and workspaces per input shape; at exact chunk lengths every chunk of
a long file is a new shape, and the peak grew from 1.7 GB (1 min) to 7.3 GB (10 min) on the
tiny model with FCPE. With `chunk_shapes=fixed` each network sees two shapes at most.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

# a fresh process per length: ru_maxrss is the process's own peak, nothing left from pytest
PROBE = """
import json, resource, sys, torch
from rvc.infer import ConvertOptions, load_converter
from tests.infer.conftest import voice16k
torch.set_num_threads(2)
conv = load_converter(sys.argv[1], index=None, f0="fcpe")
conv.convert(voice16k(60 * float(sys.argv[2])), ConvertOptions(), progress=False)
print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024))
"""


def peak_bytes(model: Path, minutes: float) -> int:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    out = subprocess.run([sys.executable, "-c", PROBE, str(model), str(minutes)], env=env,
                         cwd=REPO_ROOT, capture_output=True, text=True, check=True)  # fmt: skip
    return int(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.slow
def test_peak_memory_is_flat_in_the_input_length(voice_files):
    # 2 min is the shortest input with two chunks at the fixed length: the second call at a
    # cached shape adds that shape's cache to the vocoder's working set (2.64 GB), which a
    # 1-min input never reaches (1.98 GB); from there on the peak grows only by the audio
    # itself (10 min: 3.00 GB; exact lengths: 7.31 GB)
    short, long = peak_bytes(voice_files / "v.pth", 2), peak_bytes(voice_files / "v.pth", 10)
    assert long <= 1.25 * short, (short / 1e9, long / 1e9)
