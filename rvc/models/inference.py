"""Networks made ready for inference once, instead of on every call.

`for_inference(net, dtype, device)` is what every inference network (the synthesizer, RMVPE,
the HuBERT family, FCPE, CREPE) goes through when it is loaded for extraction or conversion:

- batch norms that follow a convolution are folded into its weights (RMVPE's 40 of them),
  weight-norm parametrizations into plain weights;
- the weights are cast to the inference dtype once (`device.inference_precision`), so no
  per-call autocast re-casts every weight on every call: the callers feed the net inputs of
  its dtype and compute their fp32 islands (mels, decoding, the NSF phase) themselves;
- on the CPU, in bf16/fp16, 1-D convolutions run as channels-last 2-D ones. oneDNN's bf16
  kernels want channels-last: given the default [B, C, T] layout, every conv call copies its
  input to channels-last and back, which costs more than the convolution itself (measured on
  AMX: a 128-channel kernel-3 conv on 40 000 samples, 27 ms as Conv1d, 3 ms channels-last).
  Activations then stay channels-last from layer to layer; elementwise ops keep the layout.
  The parameters keep their shapes and names (only their memory order changes), so the state
  dict is untouched.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

HALF = (torch.bfloat16, torch.float16)
FOLDABLE = (
    (nn.Conv1d, nn.BatchNorm1d), (nn.Conv2d, nn.BatchNorm2d), (nn.ConvTranspose2d, nn.BatchNorm2d),
)  # fmt: skip


def fold_batch_norms(net: nn.Module) -> int:
    """Fold every eval-mode BatchNorm that directly follows a conv (or transposed conv) in an
    `nn.Sequential` into that conv (the BN becomes Identity); returns how many were folded."""
    folded = 0
    for seq in [m for m in net.modules() if isinstance(m, nn.Sequential)]:
        for i in range(len(seq) - 1):
            conv, bn = seq[i], seq[i + 1]
            if any(isinstance(conv, c) and isinstance(bn, b) for c, b in FOLDABLE):
                if bn.track_running_stats and bn.running_mean is not None:
                    transpose = isinstance(conv, nn.modules.conv._ConvTransposeNd)
                    seq[i] = fuse_conv_bn_eval(conv.eval(), bn.eval(), transpose=transpose)
                    seq[i + 1] = nn.Identity()
                    folded += 1
    return folded


def _channels_last_1d(weight: torch.Tensor) -> torch.Tensor:
    """A [O, I, K] weight stored as [O, K, I]: its `unsqueeze(2)` is a channels-last 4-D weight."""
    return weight.detach().transpose(1, 2).contiguous().transpose(1, 2)


class ChannelsLastConv1d(nn.Conv1d):
    """`nn.Conv1d` computed as a channels-last `conv2d` over [B, C, 1, T] (see the module doc)."""

    def _conv_forward(self, x, weight, bias):
        out = F.conv2d(x.unsqueeze(2), weight.unsqueeze(2), bias, (1, *self.stride),
                       (0, *self.padding), (1, *self.dilation), self.groups)  # fmt: skip
        return out.squeeze(2)


class ChannelsLastConvTranspose1d(nn.ConvTranspose1d):
    """`nn.ConvTranspose1d` as a channels-last `conv_transpose2d` (see the module doc)."""

    def forward(self, x, output_size=None):
        if output_size is not None:
            raise ValueError("ChannelsLastConvTranspose1d takes no output_size")
        out = F.conv_transpose2d(
            x.unsqueeze(2), self.weight.unsqueeze(2), self.bias, (1, *self.stride),
            (0, *self.padding), (0, *self.output_padding), self.groups, (1, *self.dilation),
        )  # fmt: skip
        return out.squeeze(2)


def channels_last_convs(net: nn.Module) -> int:
    """Turn every zero-padded Conv1d / ConvTranspose1d of `net` into its channels-last twin and
    store Conv2d weights channels-last; returns how many 1-D convs changed."""
    changed = 0
    for m in net.modules():
        if type(m) in (nn.Conv1d, nn.ConvTranspose1d) and m.padding_mode == "zeros":
            if isinstance(m.padding, str):  # 'same'/'valid': keep torch's own handling
                continue
            m.__class__ = (
                ChannelsLastConv1d if type(m) is nn.Conv1d else ChannelsLastConvTranspose1d
            )
            m.weight.data = _channels_last_1d(m.weight)
            changed += 1
        elif type(m) is nn.Conv2d:
            m.weight.data = m.weight.detach().contiguous(memory_format=torch.channels_last)
    return changed


def fold_weight_norms(net: nn.Module) -> int:
    """Fold weight-norm parametrizations (`torch.nn.utils.parametrizations.weight_norm`, as
    transformers' HuBERT pos_conv has) into plain weights; returns how many were folded."""
    from torch.nn.utils import parametrize

    folded = 0
    for m in net.modules():
        if parametrize.is_parametrized(m, "weight"):
            parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)
            folded += 1
    return folded


def _cast_floats(value, dtype: torch.dtype):
    if torch.is_tensor(value):
        return value.to(dtype) if value.is_floating_point() else value
    if isinstance(value, (tuple, list)):
        return type(value)(_cast_floats(v, dtype) for v in value)
    return value


def fp32_boundary(net: nn.Module) -> nn.Module:
    """Hooks that cast a net's floating inputs to its weight dtype and its outputs to float32:
    for third-party networks (torchfcpe's, torchcrepe's) whose callers feed fp32 tensors."""
    if not getattr(net, "_rvc_fp32_boundary", False):
        net.register_forward_pre_hook(lambda m, args: _cast_floats(args, weight_dtype(m)))
        net.register_forward_hook(lambda m, args, out: _cast_floats(out, torch.float32))
        net._rvc_fp32_boundary = True
    return net


def for_inference(
    net: nn.Module, dtype: torch.dtype | None, device: str | torch.device = "cpu"
) -> nn.Module:
    """`net` in eval mode on `device`, batch norms folded, weights in `dtype` (None: as they
    are), and on the CPU in half precision its convolutions channels-last. In place; returns
    `net`. Idempotent: a second call changes nothing."""
    net.eval()
    fold_batch_norms(net)
    fold_weight_norms(net)
    dev = torch.device(device)
    net.to(device=dev, dtype=dtype) if dtype is not None else net.to(dev)
    if dev.type == "cpu" and dtype in HALF:
        channels_last_convs(net)
    return net


def weight_dtype(net: nn.Module) -> torch.dtype:
    """The dtype of `net`'s floating-point weights (what its inputs should be cast to)."""
    return next((p.dtype for p in net.parameters() if p.is_floating_point()), torch.float32)
