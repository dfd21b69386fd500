"""Slice parameters: their values have one home, the `slicing` config group."""

from __future__ import annotations

from dataclasses import fields

import pytest
from omegaconf import OmegaConf

from rvc import registry
from rvc.extract.ingest import SliceParams
from rvc.models.layouts import SAMPLE_RATES


def _default() -> dict:
    return OmegaConf.to_container(registry.load("slicing", "default"), resolve=True)


def test_the_yaml_holds_every_slicing_value_and_the_code_none():
    names = [f.name for f in fields(SliceParams)]
    assert sorted(_default()) == sorted(n for n in names if n != "sample_rate")
    # no value written in code too: leaving one out is an error, not a silent default
    with pytest.raises(TypeError):
        SliceParams(sample_rate=40000)
    values = _default()
    values.pop("overlap")
    with pytest.raises(TypeError, match="overlap"):
        SliceParams(sample_rate=40000, **values)


@pytest.mark.parametrize("rate", SAMPLE_RATES)
def test_the_default_option_builds_at_every_model_rate(rate):
    p = SliceParams(sample_rate=rate, **_default())
    assert p.sample_rate == rate and p.split in ("auto", "simple", "skip")


def test_a_rate_without_a_model_layout_is_refused():
    rates = ", ".join(map(str, SAMPLE_RATES))
    with pytest.raises(ValueError, match=f"one of {rates}, not 22050"):
        SliceParams(sample_rate=22050, **_default())
