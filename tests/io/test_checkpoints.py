"""G_/D_ checkpoints and pretrained {"model": ...} files: RVC layout, names and round trips."""

from __future__ import annotations

import pytest
import torch

from rvc.io.checkpoints import (
    ArchitectureMismatchError,
    load_model_state,
    load_state_checked,
    save_pretrained,
)
from rvc.io.safe_load import ModelFileError
from tests.io.conftest import tiny_synth, write_rvc_checkpoint
from tests.models.conftest import published_discriminator


def _assert_same(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)


def test_rvc_and_applio_checkpoints_give_their_model_state(tmp_path):
    """RVC WebUI writes weight_g names and optimizer state; Applio adds a 'scaler' entry."""
    net = tiny_synth()
    path = write_rvc_checkpoint(tmp_path / "G_900.pth", net, 9, scaler={"scale": 65536.0})
    state = load_model_state(path)
    assert not any(k.endswith(("weight_g", "weight_v")) for k in state)  # parametrization names
    _assert_same(load_state_checked(tiny_synth(seed=3), state, "x").state_dict(), net.state_dict())


def test_discriminator_checkpoint_full_size(tmp_path):
    torch.manual_seed(0)
    d = published_discriminator("v1")  # full size: 129 tensors, 55 M parameters
    path = write_rvc_checkpoint(tmp_path / "D_120.pth", d, 2)
    assert "discriminators.1.convs.0.weight_v" in torch.load(path, weights_only=True)["model"]
    d2 = published_discriminator("v1")
    load_state_checked(d2, load_model_state(path), str(path))
    _assert_same(d2.state_dict(), d.state_dict())


def test_pretrained_round_trip_and_errors(tmp_path):
    net = tiny_synth()
    path = save_pretrained(tmp_path / "f0G40k.pth", net)
    assert set(torch.load(path, weights_only=True)) == {"model"}
    _assert_same(load_model_state(path), net.state_dict())
    # a voice model or random dict is not a pretrained
    torch.save({"weight": {}, "config": []}, tmp_path / "vm.pth")
    with pytest.raises(ModelFileError, match="voice model"):
        load_model_state(tmp_path / "vm.pth")
    torch.save({"foo": 1}, tmp_path / "junk.pth")
    with pytest.raises(ModelFileError, match="junk.pth"):
        load_model_state(tmp_path / "junk.pth")


def test_mismatch_error_names_keys_and_shapes():
    state = tiny_synth(sr=48000).state_dict()
    with pytest.raises(
        ArchitectureMismatchError,
        match=r"dec\.ups\.0\.parametrizations\.weight\.original1 \(64, 32, 24\) vs \(64, 32, 16\)",
    ):
        load_state_checked(tiny_synth(sr=40000), state, "G48")
    del state["emb_g.weight"]
    state["extra.weight"] = torch.zeros(1)
    with pytest.raises(
        ArchitectureMismatchError,
        match=r"missing tensors: emb_g\.weight.*unexpected tensors: extra\.weight",
    ):
        load_state_checked(tiny_synth(sr=48000), state, "G48")
