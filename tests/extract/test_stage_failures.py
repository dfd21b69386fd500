"""A model that returns NaN for a slice: that slice is reported and skipped, the rest done."""

from __future__ import annotations

import numpy as np
import pytest

from rvc.data.store import FeatureStore
from rvc.extract.run import run
from rvc.f0.dsp import PMEstimator
from tests.conftest import compose

TARGET = "tests.extract.test_stage_failures.NanOnLongest"


class NanOnLongest(PMEstimator):
    """PM, except the longest slice of each batch comes back NaN."""

    def compute_batch(self, audios):
        out = super().compute_batch(audios)
        longest = int(np.argmax([len(a) for a in audios]))
        out[longest] = np.full_like(out[longest], np.nan)
        return out


def test_nan_slice_is_reported_skipped_and_retried(tmp_path, voice_dir):
    over = [
        "name=n",
        f"paths.root={tmp_path}",
        f"inputs=[{voice_dir}]",
        "embedder=spectral",
        "device.num_workers=1",
        "device.batch_size=64",
        "f0=pm",
        f"+f0._target_={TARGET}",
    ]
    over[-1] = f"f0._target_={TARGET}"
    res = run(compose("extract", over))
    (bad,) = res.failures["f0"]
    assert "NaN" in bad[1]
    rec = res.store.slices[bad[0]]
    assert not res.store.path("f0", rec).exists()  # no half-trusted output left
    assert res.audit["f0_missing"] == [bad[0]]
    ok = [r for n, r in res.store.slices.items() if n != bad[0]]
    assert all(res.store.path("f0", r).exists() for r in ok)
    assert res.store.path("features", rec).exists()  # the other stage is unaffected
    # a later run with a working estimator fills in just that slice
    again = run(compose("extract", over[:-1]))
    assert not again.failures["f0"] and again.audit["f0_missing"] == []
    assert again.store.path("f0", rec).exists() and again.store.stage_complete("f0")


def test_store_refuses_a_mismatched_embedder(tmp_path, voice_dir):
    res = run(
        compose(
            "extract",
            [
                "name=e",
                f"paths.root={tmp_path}",
                f"inputs=[{voice_dir}]",
                "embedder=spectral",
                "f0=pm",
                "device.num_workers=1",
            ],
        )
    )
    st = FeatureStore(res.store.root)
    st.check_embedder("spectral", 768)
    with pytest.raises(ValueError, match="contentvec"):
        st.check_embedder("contentvec", 768)
    with pytest.raises(ValueError, match="256"):
        st.check_embedder("spectral", 256)
    # a later slice-only run keeps the record of the features already there
    run(
        compose(
            "extract",
            [
                "name=e",
                f"paths.root={tmp_path}",
                f"inputs=[{voice_dir}]",
                "stages=[slice]",
                "device.num_workers=1",
            ],
        )
    )
    FeatureStore(res.store.root).check_embedder("spectral", 768)


def test_missing_weights_offline_is_one_clear_error_and_keeps_the_slices(
    tmp_path, voice_dir, monkeypatch
):
    import huggingface_hub

    def offline(*args, **kwargs):
        raise huggingface_hub.errors.LocalEntryNotFoundError("offline")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    from rvc.extract.run import ExtractError

    over = [
        "name=o",
        f"paths.root={tmp_path}",
        f"inputs=[{voice_dir}]",
        "f0=rmvpe",
        "embedder=spectral",
        "device.num_workers=1",
    ]
    with pytest.raises(ExtractError, match="rmvpe.pt"):
        run(compose("extract", over))
    st = FeatureStore(tmp_path / "experiments" / "o")
    assert len(st.slices) >= 3  # the slicing already done is kept
    res = run(compose("extract", over[:3] + ["f0=pm", *over[4:]]))
    assert res.ingested == 0 and not res.failures["f0"]
