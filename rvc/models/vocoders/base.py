"""What every vocoder class states about itself, so one YAML and one class make a vocoder.

The synthesizer's `dec` is built from the 18-item config; a `.pth` only stores tensors. A
vocoder class therefore says how its tensors are recognised (`state_markers`: `dec.*` prefixes
only it has; `source_markers`: the prefixes of its F0 source, when a no-F0 variant shares the
markers) and what its tensors tell about the config (`read_state`). `rvc.io.detect` uses these;
nothing outside the class and its `conf/vocoder/<x>.yaml` names a vocoder.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from torch import nn


def weight_shape(state: Mapping[str, Any], prefix: str) -> tuple[int, ...] | None:
    """Shape of a module's (direction) weight, whether or not it is weight-normed."""
    for suffix in (".weight", ".parametrizations.weight.original1"):
        t = state.get(prefix + suffix)
        if t is not None:
            return tuple(t.shape)
    return None


def child_indices(state: Mapping[str, Any], prefix: str) -> list[int]:
    """Sorted N of the keys `prefix.N.…` (the children of a ModuleList)."""
    pat = re.compile(re.escape(prefix) + r"\.(\d+)\.")
    return sorted({int(m.group(1)) for k in state if (m := pat.match(k))})


def kernel_sizes(state: Mapping[str, Any], prefix: str) -> list[int]:
    """Last weight dimension (the kernel) of each conv `prefix.N`, in order."""
    return [weight_shape(state, f"{prefix}.{i}")[-1] for i in child_indices(state, prefix)]


class Vocoder(nn.Module):
    """Base of the decoders: (x [B, C, T], f0 [B, T] Hz or None, g [B, gin, 1]) -> [B, 1, T·hop].

    Constructor contract (the config items, in order): initial_channel, resblock_kernel_sizes,
    resblock_dilation_sizes, upsample_rates, upsample_initial_channel, upsample_kernel_sizes,
    gin_channels, sr, then the YAML's `kwargs`.
    """

    # `dec.*` key prefixes (without "dec.") that tell this decoder family apart
    state_markers: ClassVar[tuple[str, ...]] = ()
    # key prefixes of the F0 source: present exactly when the decoder is pitch-guided
    source_markers: ClassVar[tuple[str, ...]] = ()
    # `model.checkpointing`: a decoder wraps its heavy stages in `rvc.models.commons.checkpointed`
    checkpointing: bool = False

    @classmethod
    def read_state(cls, state: Mapping[str, Any]) -> dict[str, Any]:
        """What the `dec.` tensors (prefix removed, parametrization names) say: config items by
        name (`upsample_kernel_sizes`, `resblock_kernel_sizes`, `upsample_initial_channel`) and
        layout clues (`n_stages`, `noise_conv_kernels`). Leave out what is not stored."""
        return {}
