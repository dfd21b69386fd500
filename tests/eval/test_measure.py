"""`python -m rvc.evaluate`: held-out slices and test audio → report.json, plots, report.html."""

from __future__ import annotations

import json
import math
import re

import pytest
from matplotlib.image import imread

from rvc.eval.report import compare
from rvc.eval.run import EvalError, run
from tests.conftest import compose, voiced_clip, write
from tests.infer.conftest import save_ours


def _cfg(store_root, tmp_path, *overrides):
    return compose("evaluate", ["name=t", f"paths.root={store_root}", f"out_dir={tmp_path / 'eval'}",
                                "f0=pm", "max_items=2", *overrides])  # fmt: skip


def test_report_with_heldout_and_test_clips(tmp_path, store_root):
    voice = save_ours(tmp_path / "t.pth")
    test = write(tmp_path / "other" / "talk.wav", voiced_clip(16000, 220.0, seed=5), 16000)
    report, html = run(
        _cfg(store_root, tmp_path, f"voice={voice}", f"inputs=[{test}]", "convert.pitch=12")
    )
    kinds = [i.kind for i in report.items]
    assert "heldout" in kinds and kinds[-1] == "test"
    for item in report.items:
        assert -1 <= item.spk_sim_target <= 1 and item.rtf > 0 and math.isfinite(item.vuv_error)
        assert math.isfinite(item.mcd) == (item.kind == "heldout")
    data = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert data["options"]["pitch"] == 12 and set(data["summary"]) >= {"mcd", "spk_sim_target"}
    page = html.read_text()
    pictures = re.findall(r'src="([^"]+\.png)"', page)
    assert len(pictures) == 2 * len(report.items) + 1  # F0 and mel per clip, similarity bars
    for p in pictures:
        assert imread(str(tmp_path / "eval" / p)).shape[0] > 100  # a real picture that opens
    # two runs in one table
    table = compare([tmp_path / "eval" / "report.json", tmp_path / "eval" / "report.json"])
    assert len(table.splitlines()) == 4 and "MCD" in table


def test_missing_store_is_a_clear_error(tmp_path, store_root):
    with pytest.raises(EvalError, match="no feature store"):
        run(_cfg(store_root, tmp_path, "name=absent", f"voice={tmp_path / 'x.pth'}"))
