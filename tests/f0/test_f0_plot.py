"""plot_f0 writes a PNG atomically."""

from __future__ import annotations

import numpy as np

from rvc.f0.plot import plot_f0

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_single_and_labelled_tracks(tmp_path):
    f0 = np.where(np.arange(300) % 100 < 70, 220.0, 0.0).astype(np.float32)
    one = plot_f0(f0, tmp_path / "a" / "one.png", title="tone")
    both = plot_f0({"rmvpe": f0, "pm": f0 * 1.01}, tmp_path / "both.png")
    for p in (one, both):
        data = p.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 1000
    # atomic write: no temp files left behind
    assert sorted(x.name for x in tmp_path.rglob("*") if x.is_file()) == ["both.png", "one.png"]


def test_unvoiced_and_empty_tracks(tmp_path):
    p = plot_f0({"silent": np.zeros(100), "empty": np.zeros(0)}, tmp_path / "s.png")
    assert p.read_bytes().startswith(PNG_MAGIC)
