"""Small helpers shared by the RVC networks: padding, masks, segment slicing, weight norm."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm
from torch.utils.checkpoint import checkpoint

LRELU_SLOPE = 0.1


def get_padding(kernel_size: int, dilation: int = 1) -> int:
    """'Same' padding for an odd kernel with dilation."""
    return (kernel_size * dilation - dilation) // 2


def sequence_mask(lengths: torch.Tensor, max_length: int | None = None) -> torch.Tensor:
    """Boolean mask [B, max_length], True inside each sequence."""
    if max_length is None:
        max_length = int(lengths.max())  # host sync; callers in forward pass a size instead
    positions = torch.arange(max_length, device=lengths.device, dtype=lengths.dtype)
    return positions.unsqueeze(0) < lengths.unsqueeze(1)


def slice_segments(x: torch.Tensor, ids_start: torch.Tensor, segment_size: int) -> torch.Tensor:
    """Cut [.., segment_size] windows starting at ids_start [B] from x [B, T] or [B, C, T]."""
    # one gather instead of a per-item Python loop: no host syncs, static output shape
    offsets = torch.arange(segment_size, device=x.device)
    index = ids_start.to(x.device).long().unsqueeze(-1) + offsets  # [B, S]
    if x.dim() == 2:
        return torch.gather(x, 1, index)
    index = index.unsqueeze(1).expand(-1, x.size(1), -1)  # [B, C, S]
    return torch.gather(x, 2, index)


def rand_slice_segments(
    x: torch.Tensor, lengths: torch.Tensor | None, segment_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """A random segment per item of x [B, C, T] within its valid length -> (slice, starts [B])."""
    b, _, t = x.shape
    if t < segment_size:  # shape check only (no sync): pad short batches so gather stays valid
        x = torch.nn.functional.pad(x, (0, segment_size - t))
    if lengths is None:
        lengths = torch.full((b,), t, device=x.device, dtype=torch.long)
    max_start = (lengths.to(x.device) - segment_size + 1).clamp(min=1)  # [B]
    ids_start = (torch.rand(b, device=x.device) * max_start).long()
    return slice_segments(x, ids_start, segment_size), ids_start


def wn(module: nn.Module) -> nn.Module:
    """Weight-normalise `module.weight` (parametrization; RVC names mapped in rvc.io)."""
    return weight_norm(module, name="weight")


def remove_weight_norm(module: nn.Module) -> nn.Module:
    """Fold every weight-norm parametrization under `module` into a plain weight, in place."""
    for m in module.modules():
        if parametrize.is_parametrized(m, "weight"):
            kinds = [type(p).__name__ for p in m.parametrizations["weight"]]
            if kinds == ["_WeightNorm"]:
                parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)
    return module


def has_weight_norm(module: nn.Module) -> bool:
    """Whether any submodule still carries a weight-norm parametrization."""
    return any(
        parametrize.is_parametrized(m, "weight")
        and any(type(p).__name__ == "_WeightNorm" for p in m.parametrizations["weight"])
        for m in module.modules()
    )


def conv_stack(
    convs: nn.ModuleList, conv_post: nn.Module, x: torch.Tensor
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The shared body of every sub-discriminator: conv + leaky ReLU stack, then a 1-channel
    post conv; returns (flattened logits, feature maps incl. the post conv's output)."""
    fmap = []
    for conv in convs:
        x = F.leaky_relu(conv(x), LRELU_SLOPE)
        fmap.append(x)
    x = conv_post(x)
    fmap.append(x)
    return torch.flatten(x, 1), fmap


def scaled(channels: int, width: float) -> int:
    """A channel count times a width factor (1 = the published size), at least 1."""
    return max(1, round(channels * width))


def checkpointed(module: nn.Module, fn: Callable[..., Any], *args: Any) -> torch.Tensor:
    """`fn(*args)`, recomputed in backward instead of keeping its activations when `module`
    has `checkpointing` on and trains with gradients (`model.checkpointing`); plain otherwise.
    Non-reentrant: the RNG state is replayed (same noise) and torch.compile traces it."""
    if getattr(module, "checkpointing", False) and module.training and torch.is_grad_enabled():
        return checkpoint(fn, *args, use_reentrant=False)
    return fn(*args)
