"""`rvc.models.inference`: networks made ready for inference once. The channels-last convs and
folded batch norms compute what torch's layers compute; the state dict keeps its names and
shapes; and once cast, no network re-casts a single weight per call, as autocast does (counted
with a dispatch mode, so this holds on any CPU, AMX or not)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from rvc.models.inference import (
    ChannelsLastConv1d,
    ChannelsLastConvTranspose1d,
    channels_last_convs,
    fold_batch_norms,
    for_inference,
)
from tests.io.conftest import infer, tiny_synth

BF16 = torch.bfloat16


class WeightCasts(TorchDispatchMode):
    """Counts dtype casts (`aten.to` under inference mode, else `aten._to_copy`) whose input is
    one of `module`'s parameters."""

    CASTS = (torch.ops.aten._to_copy.default, torch.ops.aten.to.dtype,
             torch.ops.aten.to.dtype_layout)  # fmt: skip

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.weights = {p.data_ptr() for p in module.parameters()}
        self.casts = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func in self.CASTS and args[0].data_ptr() in self.weights:
            self.casts += out.dtype != args[0].dtype
        return out


@pytest.mark.parametrize(
    "layer",
    [
        nn.Conv1d(6, 8, 5, padding=2),
        nn.Conv1d(6, 8, 3, stride=2, dilation=3, padding=3, bias=False),
        nn.Conv1d(8, 8, 7, padding=3, groups=4),
        nn.Conv1d(1, 8, 10, stride=5),  # HuBERT's first layer: one input channel
        nn.ConvTranspose1d(8, 4, 16, stride=8, padding=4),
        nn.ConvTranspose1d(8, 4, 3, stride=3, padding=0, output_padding=1),
    ],
    ids=str,
)
def test_channels_last_convs_compute_what_torch_computes(layer):
    torch.manual_seed(0)
    x = torch.randn(2, layer.in_channels, 50)
    ref = layer(x)
    holder = nn.Sequential(copy.deepcopy(layer))
    assert channels_last_convs(holder) == 1
    assert isinstance(holder[0], (ChannelsLastConv1d, ChannelsLastConvTranspose1d))
    assert holder[0].weight.shape == layer.weight.shape  # names and shapes: the state dict as is
    torch.testing.assert_close(holder(x), ref, rtol=1e-5, atol=1e-5)
    low = for_inference(holder, BF16)(x.to(BF16)).float()
    assert (low - ref).abs().max() < 0.05 * ref.abs().max()


def test_channels_last_output_stays_channels_last_in_bf16():
    # the point of the layout: layer after layer, no copy to channels-last and back
    net = for_inference(nn.Sequential(nn.Conv1d(8, 8, 3, padding=1), nn.LeakyReLU(),
                                      nn.Conv1d(8, 8, 3, padding=1)), BF16)  # fmt: skip
    out = net(torch.randn(1, 8, 400, dtype=BF16))
    assert out.stride()[1] == 1 and out.stride()[2] == 8  # [B, C, T] stored as [B, T, C]


def test_batch_norms_fold_into_rmvpe_convs_with_the_same_salience():
    from rvc.f0.rmvpe_net import RMVPENet

    torch.manual_seed(0)
    net = RMVPENet(n_blocks=1, en_de_layers=2, inter_layers=1).eval()
    for m in net.modules():  # trained-looking statistics, not the identity of a fresh BN
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    mel = torch.randn(1, 128, 64)
    with torch.inference_mode():
        ref = net(mel)
    before = sum(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    folded = fold_batch_norms(net)
    after = sum(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    assert folded > 0 and after == before - folded == 1  # the input BN has no conv before it
    with torch.inference_mode():
        torch.testing.assert_close(net(mel), ref, rtol=1e-4, atol=1e-5)


def test_rmvpe_in_bf16_gru_included_stays_close_to_fp32():
    from rvc.f0.rmvpe import RMVPEEstimator
    from rvc.f0.rmvpe_net import RMVPEMel, RMVPENet

    torch.manual_seed(0)
    est = RMVPEEstimator()
    est._net, est._mel = RMVPENet(n_blocks=1, en_de_layers=2, inter_layers=1).eval(), RMVPEMel()
    x = 0.3 * torch.sin(2 * torch.pi * 220 * torch.arange(16000) / 16000)[None]
    ref = est.salience(x)
    low = est.cast(BF16).salience(x)
    assert next(est._net.fc.parameters()).dtype == BF16 and low.dtype == torch.float32
    assert (low - ref).abs().max() < 0.02  # salience in 0..1; decoding thresholds at 0.03


def test_synthesizer_for_inference_is_the_same_in_fp32_and_idempotent():
    net = tiny_synth()
    net.remove_weight_norm()
    ref = infer(net)
    net.for_inference(None, "cpu")
    torch.testing.assert_close(infer(net), ref, rtol=1e-5, atol=1e-6)
    net.for_inference(BF16, "cpu").for_inference(BF16, "cpu")
    low = infer(net)
    assert low.dtype == torch.float32
    snr = 20 * torch.log10(ref.norm() / (ref - low).norm())
    assert snr > 25, snr  # bf16 noise, not a broken layer (a wrong conv gives < 10 dB)


def _casts(module: nn.Module, call) -> int:
    counter = WeightCasts(module)
    with torch.inference_mode(), counter:
        call()
    return counter.casts


def _networks():
    """(name, module whose weights are counted, a call running it on fp32 input, cast it)."""
    from rvc.f0.crepe import CrepeEstimator
    from rvc.f0.fcpe import FCPEEstimator
    from rvc.f0.rmvpe import RMVPEEstimator
    from rvc.f0.rmvpe_net import RMVPEMel, RMVPENet

    audio = (0.3 * np.sin(2 * np.pi * 220 * np.arange(8000) / 16000)).astype(np.float32)
    torch.manual_seed(0)
    rmvpe = RMVPEEstimator()
    # no GRU here: under a dispatch mode autocast leaves aten.gru's weights fp32 and fails
    # (the GRU in bf16: test_rmvpe_in_bf16_gru_included_stays_close_to_fp32)
    small = RMVPENet(n_blocks=1, en_de_layers=2, inter_layers=1, n_gru=0).eval()
    rmvpe._net, rmvpe._mel = small, RMVPEMel()
    crepe, fcpe = CrepeEstimator(model="tiny"), FCPEEstimator()
    crepe.load(), fcpe.load()
    synth = tiny_synth()
    synth.remove_weight_norm()
    return [
        ("rmvpe", rmvpe._net, lambda: rmvpe.compute(audio), rmvpe.cast),
        ("crepe_tiny", crepe._net, lambda: crepe.compute(audio), crepe.cast),
        ("fcpe", fcpe._model.model, lambda: fcpe.compute(audio), fcpe.cast),
        ("synthesizer", synth.dec, lambda: infer(synth), lambda d: synth.for_inference(d, "cpu")),
    ]


def test_no_weight_is_cast_per_call_once_the_networks_are_cast(tmp_path):
    from rvc.embedders.hubert import HubertEmbedder
    from tests.embedders.conftest import HIDDEN, save_tiny

    save_tiny(tmp_path, final_proj=False, fmt="safetensors")
    emb = HubertEmbedder(local_path=tmp_path, weights="model.safetensors", dim=HIDDEN).load()
    x = torch.randn(1, 8000)
    nets = [*_networks(), ("hubert", emb.model, lambda: emb(x), emb.cast)]
    for name, module, call, cast in nets:
        n_weights = sum(1 for p in module.parameters() if p.dim() > 1)
        with torch.autocast("cpu", dtype=BF16):  # what per-call autocast does: casts every call
            per_call = _casts(module, call)
        assert per_call >= n_weights > 0, (name, per_call, n_weights)
        cast(BF16)
        assert _casts(module, call) == 0, name
        fp32 = {n for n, p in module.named_parameters() if p.dtype != BF16}
        # fp32 on purpose: the synthesizer's output layer (a bf16 waveform has an 8-bit
        # mantissa) and HuBERT's first GroupNorm (statistics over a whole clip)
        kept = {f"{m}.{p}" for m in ("conv_post", "feature_extractor.conv_layers.0.layer_norm")
                for p in ("weight", "bias")}  # fmt: skip
        assert fp32 <= kept, (name, fp32)
