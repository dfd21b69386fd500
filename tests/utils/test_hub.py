"""resolve_file: local paths, and a fast clear error when the hub cannot be reached."""

from __future__ import annotations

import time

import pytest

from rvc.utils import hub
from rvc.utils.hub import MissingModelFileError, resolve_file


@pytest.fixture(autouse=True)
def _fresh_probe(monkeypatch):
    monkeypatch.setattr(hub, "_REACHABLE", {})
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)


def _timed_error(tmp_path) -> tuple[float, str]:
    t0 = time.perf_counter()
    with pytest.raises(MissingModelFileError) as e:
        resolve_file("someone/models", "rmvpe.pt", cache_dir=tmp_path / "cache")
    return time.perf_counter() - t0, str(e.value)


def test_local_path_wins_and_a_missing_one_is_named(tmp_path):
    f = tmp_path / "w.pt"
    f.write_bytes(b"x")
    assert resolve_file(None, None, local_path=f) == f
    with pytest.raises(MissingModelFileError, match="nope.pt"):
        resolve_file("a/b", "c", local_path=tmp_path / "nope.pt")


def test_hf_hub_offline_fails_within_two_seconds(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    seconds, msg = _timed_error(tmp_path)
    assert seconds < 2.0
    assert "HF_HUB_OFFLINE" in msg and "rmvpe.pt" in msg and "someone/models" in msg


@pytest.mark.parametrize(
    "endpoint,why",
    [
        ("https://hub.invalid", "cannot resolve hub.invalid"),  # .invalid never resolves
        ("http://127.0.0.1:9", "cannot connect to 127.0.0.1:9"),  # discard port: refused
    ],
)
def test_unreachable_hub_fails_fast_without_retries(tmp_path, monkeypatch, endpoint, why):
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    downloads = []
    import huggingface_hub

    real = huggingface_hub.hf_hub_download

    def spy(*args, **kwargs):
        downloads.append(kwargs.get("local_files_only", False))
        return real(*args, **kwargs)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", spy)
    seconds, msg = _timed_error(tmp_path)
    assert seconds < 2.0 and why in msg and "hf download someone/models rmvpe.pt" in msg
    assert downloads == [True]  # the cache was asked; no download was tried
    # a second file in the same run does not probe again
    t0 = time.perf_counter()
    with pytest.raises(MissingModelFileError):
        resolve_file("someone/models", "other.pt", cache_dir=tmp_path / "cache")
    assert time.perf_counter() - t0 < 1.0
