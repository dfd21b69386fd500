"""Weight-norm names: parametrizations (ours) <-> weight_g / weight_v (RVC files)."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from rvc.io.weight_norm_names import from_rvc_names, to_rvc_name, to_rvc_names


def _nets() -> tuple[nn.Module, nn.Module]:
    """The same conv stack with the new (parametrizations) and the old weight norm."""
    torch.manual_seed(0)
    new = nn.Sequential(
        weight_norm(nn.Conv1d(2, 3, 3)),
        nn.Conv1d(3, 3, 1),
        weight_norm(nn.ConvTranspose1d(3, 2, 4)),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the old API is deprecated, but it defines RVC's names
        old = nn.Sequential(
            nn.utils.weight_norm(nn.Conv1d(2, 3, 3)),
            nn.Conv1d(3, 3, 1),
            nn.utils.weight_norm(nn.ConvTranspose1d(3, 2, 4)),
        )
    return new, old


def test_names_map_to_the_old_weight_norm_and_back():
    new, old = _nets()
    rvc = to_rvc_names(new.state_dict())
    assert set(rvc) == set(old.state_dict())  # exactly the keys RVC's modules have
    assert not any(k.endswith("original0") for k in rvc)  # none of the new names is left
    old.load_state_dict(rvc)  # strict: names and shapes fit the old API
    x = torch.randn(1, 2, 9)
    torch.testing.assert_close(old(x), new(x))
    back = from_rvc_names(old.state_dict())
    assert list(back) == list(new.state_dict())
    new.load_state_dict(back)


def test_only_the_suffix_is_renamed_and_collisions_are_refused():
    assert (
        to_rvc_name("dec.weight_gate.parametrizations.weight.original1")
        == "dec.weight_gate.weight_v"
    )
    assert to_rvc_name("emb_g.weight") == "emb_g.weight"
    assert from_rvc_names({"a.weight_gain": 1})["a.weight_gain"] == 1
    with pytest.raises(ValueError, match="a.weight_g"):
        to_rvc_names({"a.weight_g": 1, "a.parametrizations.weight.original0": 2})
