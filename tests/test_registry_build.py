"""`rvc.registry.build`: one builder for every family (name or node → instance, loaded, on device)."""

from __future__ import annotations

import pytest

from rvc.registry import RegistryError, build, load


class _Loads:
    """Records the lifecycle calls `build` makes, in order."""

    def __init__(self, device: str = "?", size: int = 1):
        self.calls, self.size = [("init", device)], size

    def load(self):
        self.calls.append(("load",))
        return self

    def to(self, device):
        self.calls.append(("to", device))
        return self


def test_a_name_builds_its_option_loaded_on_the_device():
    f0 = build("pm", "cpu", group="f0")
    assert type(f0).__name__ == "PMEstimator" and f0.device == "cpu"
    emb = build(load("embedder", "spectral"), "cpu", version="v1", dim=256)
    assert emb.name == "spectral" and emb.dim == 256 and emb.proj.device.type == "cpu"


def test_build_instantiates_then_loads_then_moves():
    obj = build({"_target_": f"{__name__}._Loads", "size": 3}, "meta")
    assert obj.size == 3 and obj.calls == [("init", "meta"), ("load",), ("to", "meta")]


def test_a_name_without_its_group_or_unknown_is_refused():
    with pytest.raises(RegistryError, match="needs its group"):
        build("pm")
    with pytest.raises(RegistryError, match=r"no f0 named 'nope'; known: .*pm"):
        build("nope", group="f0")
