"""G_/D_ checkpoints and pretrained {"model": ...} files: RVC layout, names and round trips."""

from __future__ import annotations

import pytest
import torch

from rvc.io.checkpoints import (
    ArchitectureMismatchError,
    load_checkpoint,
    load_model_state,
    load_state_checked,
    save_checkpoint,
    save_pretrained,
)
from rvc.io.safe_load import ModelFileError
from tests.io.conftest import tiny_synth
from tests.models.conftest import published_discriminator


def _step(net: torch.nn.Module) -> torch.optim.Optimizer:
    """An AdamW that has taken one step, so it carries state."""
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4, betas=(0.8, 0.99), eps=1e-9)
    loss = sum(p.float().pow(2).mean() for p in net.parameters())
    loss.backward()
    opt.step()
    return opt


def _assert_same(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)


def test_generator_checkpoint_round_trip(tmp_path):
    net = tiny_synth()
    opt = _step(net)
    path = save_checkpoint(
        tmp_path / "G_120.pth", net, iteration=4, optimizer=opt, learning_rate=1e-4
    )
    raw = torch.load(path, weights_only=True)
    assert set(raw) == {"model", "iteration", "optimizer", "learning_rate"}
    assert raw["iteration"] == 4 and raw["learning_rate"] == 1e-4
    assert "dec.ups.0.weight_g" in raw["model"] and not any(
        "parametrizations" in k for k in raw["model"]
    )
    assert any(k.startswith("enc_q.") for k in raw["model"])  # training checkpoints keep enc_q

    ck = load_checkpoint(path)
    assert ck.iteration == 4 and ck.learning_rate == 1e-4
    fresh = tiny_synth(seed=5)
    load_state_checked(fresh, ck.model, str(path))
    _assert_same(fresh.state_dict(), net.state_dict())
    opt2 = torch.optim.AdamW(fresh.parameters(), lr=1e-4)
    opt2.load_state_dict(ck.optimizer)
    torch.testing.assert_close(
        opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"]
    )


def test_discriminator_checkpoint_round_trip_full_size(tmp_path):
    torch.manual_seed(0)
    d = published_discriminator("v1")  # full size: 129 tensors, 55 M parameters
    path = save_checkpoint(
        tmp_path / "D_120.pth", d, iteration=2, optimizer=None, learning_rate=1e-4
    )
    raw = torch.load(path, weights_only=True)
    assert "discriminators.1.convs.0.weight_v" in raw["model"]
    ck = load_checkpoint(path)
    d2 = published_discriminator("v1")
    load_state_checked(d2, ck.model, str(path))
    _assert_same(d2.state_dict(), d.state_dict())


def test_rvc_and_applio_checkpoints_load(tmp_path):
    """RVC WebUI wrote weight_g names natively; Applio adds a 'scaler' entry."""
    net = tiny_synth()
    from rvc.io.weight_norm_names import to_rvc_names

    data = {
        "model": to_rvc_names(net.state_dict()),
        "iteration": 9,
        "optimizer": {},
        "learning_rate": 1e-4,
    }
    data["scaler"] = {"scale": 65536.0}
    torch.save(data, tmp_path / "G_900.pth")
    ck = load_checkpoint(tmp_path / "G_900.pth")
    assert ck.iteration == 9 and ck.optimizer is None and ck.extra == {"scaler": {"scale": 65536.0}}
    _assert_same(
        load_state_checked(tiny_synth(seed=3), ck.model, "x").state_dict(), net.state_dict()
    )


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
        load_checkpoint(tmp_path / "junk.pth")


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
