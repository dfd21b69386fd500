import json

import numpy as np

from rvc.data.audit import build_audit, recommend_epochs, save_audit
from rvc.data.store import FeatureStore, SliceRecord, SourceRecord


def test_epoch_rule_matches_the_user_rule_of_thumb():
    assert 600 <= recommend_epochs(4)["epochs"] <= 1200
    for m in (20, 30, 45, 60):
        assert 200 <= recommend_epochs(m)["epochs"] <= 400
    eps = [recommend_epochs(m)["epochs"] for m in (1, 4, 10, 20, 60, 200)]
    assert eps == sorted(eps, reverse=True)  # more data, fewer epochs
    assert "overfitting" in recommend_epochs(3)["note"]


def test_audit_counts_minutes_drops_and_f0(tmp_path):
    st = FeatureStore(tmp_path)
    st.params = {"sample_rate": 40000}
    ok = SourceRecord(
        "/a.wav",
        0,
        "h" * 64,
        "p",
        "ok",
        duration=120.0,
        usable=90.0,
        stats={"snr_db": 30.0},
        slices=["s0"],
    )
    bad = SourceRecord(
        "/b.wav", 0, "i" * 64, "p", "skipped", reason="silent (peak -90 dBFS)", duration=10.0
    )
    rec = SliceRecord("s0", 0, ok.path, 0, 120000, 120000, 48000, "sha")
    st.put_source(ok, [rec])
    st.put_source(bad, [])
    f0 = np.r_[np.zeros(10), np.full(80, 200.0), np.zeros(10)].astype(np.float32)
    st.path("f0", rec).parent.mkdir(parents=True)
    np.save(st.path("f0", rec), f0)
    st.stages["f0"] = {"config": {}, "hash": "x", "done": {"s0": "sha"}}
    audit = build_audit(st)
    assert audit["usable_minutes"] == 1.5 and audit["total_minutes"] == round(130 / 60, 3)
    assert audit["files_used"] == 1 and audit["dropped"][0]["reason"].startswith("silent")
    assert audit["f0_hz"]["median"] == 200.0
    assert audit["slice_seconds"]["max"] == 3.0
    save_audit(st, audit)
    assert json.loads((tmp_path / "audit.json").read_text())["slices"] == 1
    assert (tmp_path / "audit.png").stat().st_size > 1000
