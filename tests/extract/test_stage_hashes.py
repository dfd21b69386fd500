"""A store extracted before a config refactor keeps its F0 and features.

`fixtures/stage_hashes_0.1.json` holds the outcome hash (`rvc.data.store.outcome_hash`) of what
extraction recorded for every F0 and embedder option, v1 and v2, made with the configs of commit
a6801cb (before the options inherited from `_base` files). A moved key, a default that went into
a class or a YAML that now inherits must not change what a store's stage is matched against:
if it did, every user's store would silently redo its F0 or feature stage.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from rvc.data.store import outcome_hash
from rvc.extract.run import _features_config
from tests.conftest import compose

BEFORE = json.loads((Path(__file__).parent / "fixtures" / "stage_hashes_0.1.json").read_text())


@pytest.mark.parametrize("key", sorted(BEFORE))
def test_stage_config_hash_unchanged(key):
    group, option, version = key.split("/")
    cfg = compose("extract", ["name=x", f"{group}={option}", f"embedder.version={version}"])
    node = OmegaConf.to_container(cfg[group], resolve=True)
    if group == "embedder":
        node = _features_config(node)
    assert outcome_hash(node) == BEFORE[key], f"{key}: {node}"
