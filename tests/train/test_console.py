"""What a user reads from `train.py`: one line per event, none of the third-party clutter that
used to hide it (faiss's loader INFO, Lightning's lines twice, its adverts, `v_num`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.train.conftest import STORE_OPTIONS

ROOT = Path(__file__).resolve().parents[2]


def _lines(text: str) -> list[str]:
    """Printed lines as a terminal shows them: a progress bar's redraws (\\r) keep the last."""
    return [ln.rsplit("\r", 1)[-1].rstrip() for ln in text.splitlines() if ln.strip()]


def test_train_output_is_one_line_per_event(tmp_path, store_root):
    p = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "name=t", f"paths.root={store_root}",
         f"out_dir={tmp_path / 'run'}", *STORE_OPTIONS, "pretrained=none", "device.num_workers=0",
         "trainer.max_epochs=1", "callbacks.evaluation=null"],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr[-2000:]
    lines = _lines(p.stdout + "\n" + p.stderr)
    text = "\n".join(lines)
    for clutter in ("faiss.loader", "Loading faiss", "litlogger", "Tip:", "v_num", "Warning"):
        assert clutter not in text, f"{clutter!r} in:\n{text}"
    repeated = {ln for ln in lines if lines.count(ln) > 1 and "|" not in ln}  # bars aside
    assert not repeated, f"printed twice: {repeated}\n{text}"
    # our start line in place of Lightning's hardware lines and 12-line model summary
    assert any(ln.startswith("training 1 epochs on 1 × cpu, precision 32") for ln in lines), text
    for gone in ("GPU available", "Trainable params", "Total estimated model params"):
        assert gone not in text, f"{gone!r} in:\n{text}"
    # Lightning's "`Trainer.fit` stopped" is dropped: our summary names the epochs instead
    assert not any("Trainer.fit` stopped" in ln for ln in lines), text
    assert any(ln.startswith("epochs: 1, steps: ") for ln in lines), text
    assert sum(ln.startswith("best/val/mel") or "best val/mel" in ln for ln in lines) == 1, text
    assert len(lines) < 25, text
