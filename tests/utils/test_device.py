"""The one accelerator -> torch device mapping (rvc.utils.device)."""

from __future__ import annotations

import pytest
import torch

from rvc.errors import RVCError
from rvc.utils.device import DeviceConfigError, extract_devices, torch_device_type


@pytest.mark.parametrize(
    "accelerator,kind", [("cpu", "cpu"), ("gpu", "cuda"), ("cuda", "cuda"), ("GPU", "cuda"),
                         ("mps", "mps")],
)  # fmt: skip
def test_accelerator_names_map_to_torch_device_types(accelerator, kind):
    assert torch_device_type(accelerator) == kind


def test_auto_is_cuda_only_where_there_is_cuda():
    want = "cuda" if torch.cuda.is_available() else "cpu"
    assert torch_device_type("auto") == torch_device_type(None) == want


def test_unknown_accelerator_is_a_clear_stage_error():
    with pytest.raises(
        DeviceConfigError, match="device.accelerator must be cpu, gpu, mps or auto, not 'tpu'"
    ):
        torch_device_type("tpu")
    assert issubclass(DeviceConfigError, RVCError) and issubclass(DeviceConfigError, ValueError)
    with pytest.raises(ValueError, match="'tpu'"):  # extraction's own check reads the same
        extract_devices("tpu", 1)
    with pytest.raises(ValueError, match="cpu or gpu"):
        extract_devices("mps", 1)


def test_cpu_extraction_workers_follow_the_count():
    assert (
        extract_devices("cpu", 3) == ["cpu"] * 3 and extract_devices("cpu", [0, 1]) == ["cpu"] * 2
    )


def test_conversion_uses_the_mapping(monkeypatch):
    """infer.py hands torch_device_type(device.accelerator) to load_converter."""
    import rvc.infer.load
    import rvc.infer.run
    from tests.conftest import compose

    seen = []

    def stop(*args, **kwargs):
        seen.append(args[4])
        raise rvc.infer.load.ConverterLoadError("stop here")

    monkeypatch.setattr(rvc.infer.load, "load_converter", stop)
    with pytest.raises(RVCError, match="stop here"):
        rvc.infer.run.run(compose("infer", ["voice=v.pth", "input=a.wav", "device=cpu"]))
    assert seen == ["cpu"]
