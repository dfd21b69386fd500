"""The install itself: the torch pair loads together, and what imports torchaudio works.

A torchaudio built for another torch fails at import with an undefined symbol; this makes
that one clear failure naming the versions instead of collection errors across the suite.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _pins() -> dict[str, str]:
    text = (ROOT / "pyproject.toml").read_text()
    return dict(re.findall(r'"(torch|torchaudio)==([0-9][0-9.]*)"', text))


def test_torch_pair_is_pinned_exactly_and_installed_as_pinned():
    pins = _pins()
    assert set(pins) == {"torch", "torchaudio"}, f"pyproject.toml pins: {pins}"
    installed = {name: md.version(name).split("+")[0] for name in pins}
    assert installed == pins, f"installed {installed}, pyproject.toml pins {pins}"


@pytest.mark.parametrize("module", ["torchaudio", "torchcrepe", "torchfcpe"])
def test_torchaudio_users_import(module):
    versions = {n: md.version(n) for n in ("torch", "torchaudio")}
    try:
        importlib.import_module(module)
    except Exception as e:  # OSError: undefined symbol ... when the pair does not match
        pytest.fail(
            f"import {module} failed with torch {versions['torch']} and torchaudio "
            f"{versions['torchaudio']} (install with `-c constraints.txt`): {type(e).__name__}: {e}"
        )


def test_constraints_lock_the_pinned_pair():
    lock = (ROOT / "constraints.txt").read_text()
    for name, version in _pins().items():
        assert re.search(rf"^{name}=={re.escape(version)}$", lock, re.M), (
            f"constraints.txt does not lock {name}=={version}"
        )
