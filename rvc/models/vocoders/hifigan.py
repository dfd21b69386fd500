"""RVC's HiFi-GAN decoders: `HiFiGANNSF` (pitch-guided, the default) and `HiFiGAN` (no F0).

Layout as RVC files: `conv_pre`, weight-normed `ups.N`, `resblocks.N.convs1/convs2.M`
(len(resblock_kernel_sizes) blocks per upsampling stage), `conv_post` (no bias), `cond`;
the NSF variant adds `m_source.l_linear` and `noise_convs.N`, which inject the sine source
downsampled to each stage's rate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from rvc.formats import parse_sample_rate
from rvc.models.commons import LRELU_SLOPE, checkpointed, get_padding, remove_weight_norm, wn
from rvc.models.layouts import noise_conv_kernel
from rvc.models.nsf import SourceModuleHnNSF
from rvc.models.vocoders.base import Vocoder, child_indices, kernel_sizes, weight_shape


class ResBlock(nn.Module):
    """HiFi-GAN ResBlock1: per dilation, lrelu → dilated conv → lrelu → conv, plus residual."""

    def __init__(
        self,
        channels: int,
        kernel_size: int = 3,
        dilations: Sequence[int] = (1, 3, 5),
        slope: float = LRELU_SLOPE,
    ) -> None:
        super().__init__()
        self.slope = slope  # leaky ReLU slope: 0.1 in HiFi-GAN, 0.2 in RefineGAN
        self.convs1 = nn.ModuleList(
            wn(
                nn.Conv1d(
                    channels, channels, kernel_size, dilation=d, padding=get_padding(kernel_size, d)
                )
            )
            for d in dilations
        )
        self.convs2 = nn.ModuleList(
            wn(nn.Conv1d(channels, channels, kernel_size, padding=get_padding(kernel_size)))
            for _ in dilations
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C, T] -> [B, C, T]."""
        for conv1, conv2 in zip(self.convs1, self.convs2, strict=True):
            y = conv1(F.leaky_relu(x, self.slope))
            x = x + conv2(F.leaky_relu(y, self.slope))
        return x


def branch_mean(branches: Sequence[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """Mean of parallel branches applied to the same input (the multi-receptive-field fusion)."""
    out = branches[0](x)
    for branch in branches[1:]:
        out = out + branch(x)
    return out / len(branches)


def upsample_layer(in_ch: int, out_ch: int, rate: int, kernel: int) -> nn.Module:
    """Weight-normed ConvTranspose1d mapping [B, in_ch, T] -> [B, out_ch, T·rate]."""
    # odd rates (not in stock RVC configs) use Applio's padding/output_padding so length = T·rate
    padding = (kernel - rate) // 2 if rate % 2 == 0 else rate // 2 + rate % 2
    conv = nn.ConvTranspose1d(in_ch, out_ch, kernel, rate, padding=padding, output_padding=rate % 2)
    return wn(conv)


def noise_conv(channels: int, stride: int) -> nn.Conv1d:
    """Brings the sample-rate source down to a stage's rate: [B, 1, N] -> [B, channels, N / stride]."""
    kernel = noise_conv_kernel(stride)
    return nn.Conv1d(1, channels, kernel, stride=stride, padding=(kernel - stride) // 2)


class HiFiGAN(Vocoder):
    """Plain HiFi-GAN decoder for no-F0 models: latent [B, C, T] -> waveform [B, 1, T·hop]."""

    state_markers = ("ups.", "resblocks.")

    @classmethod
    def read_state(cls, state: Mapping[str, Any]) -> dict[str, Any]:
        """Upsample kernels, stage count, resblock kernels, initial channels (and the NSF
        noise-conv kernels): all stored in the tensors."""
        ups = kernel_sizes(state, "ups")  # ConvTranspose1d weight: [in, out, kernel]
        ids = child_indices(state, "resblocks")  # len(resblock kernels) per stage
        per_stage = ids[: len(ids) // max(len(ups), 1)]
        facts = {
            "upsample_kernel_sizes": ups,
            "n_stages": len(ups),
            "resblock_kernel_sizes": [
                weight_shape(state, f"resblocks.{i}.convs1.0")[-1] for i in per_stage
            ],
            "upsample_initial_channel": weight_shape(state, "conv_pre")[0],
        }
        if noise := kernel_sizes(state, "noise_convs"):
            facts["noise_conv_kernels"] = noise
        return facts

    def __init__(
        self,
        initial_channel: int,
        resblock_kernel_sizes: Sequence[int],
        resblock_dilation_sizes: Sequence[Sequence[int]],
        upsample_rates: Sequence[int],
        upsample_initial_channel: int,
        upsample_kernel_sizes: Sequence[int],
        gin_channels: int = 0,
        sr: int | str | None = None,
        checkpointing: bool = False,
    ) -> None:
        super().__init__()
        self.checkpointing = checkpointing  # recompute resblocks in backward to save memory
        if len(upsample_rates) != len(upsample_kernel_sizes):
            raise ValueError("upsample_rates and upsample_kernel_sizes differ in length")
        if len(resblock_kernel_sizes) != len(resblock_dilation_sizes):
            raise ValueError("resblock_kernel_sizes and resblock_dilation_sizes differ in length")
        self.num_kernels = len(resblock_kernel_sizes)
        self.upsample_rates = [int(u) for u in upsample_rates]
        self.upp = math.prod(self.upsample_rates)
        self.sample_rate = None if sr is None else parse_sample_rate(sr)
        self.channels = [
            upsample_initial_channel // (2 ** (i + 1)) for i in range(len(upsample_rates))
        ]
        self.conv_pre = nn.Conv1d(initial_channel, upsample_initial_channel, 7, 1, padding=3)
        self.ups = nn.ModuleList(
            upsample_layer(upsample_initial_channel // (2**i), self.channels[i], u, k)
            for i, (u, k) in enumerate(zip(upsample_rates, upsample_kernel_sizes, strict=True))
        )
        self.resblocks = nn.ModuleList(
            ResBlock(ch, k, d)
            for ch in self.channels
            for k, d in zip(resblock_kernel_sizes, resblock_dilation_sizes, strict=True)
        )
        self.conv_post = nn.Conv1d(self.channels[-1], 1, 7, 1, padding=3, bias=False)
        self.cond = nn.Conv1d(gin_channels, upsample_initial_channel, 1) if gin_channels else None

    def _stage(self, i: int, x: torch.Tensor) -> torch.Tensor:
        # most of G's activation memory: recomputed in backward under `checkpointing`
        return checkpointed(self, self._resblocks, i, x)

    def _resblocks(self, i: int, x: torch.Tensor) -> torch.Tensor:
        # the parallel resblocks of one stage, averaged
        first = i * self.num_kernels
        return branch_mean(self.resblocks[first : first + self.num_kernels], x)

    def _head(self, x: torch.Tensor, g: torch.Tensor | None) -> torch.Tensor:
        x = self.conv_pre(x)
        if g is not None and self.cond is not None:
            x = x + self.cond(g)
        return x

    def _tail(self, x: torch.Tensor) -> torch.Tensor:
        # RVC's last leaky ReLU uses torch's default slope 0.01, not LRELU_SLOPE
        return torch.tanh(self.conv_post(F.leaky_relu(x)))

    def forward(
        self, x: torch.Tensor, f0: torch.Tensor | None = None, g: torch.Tensor | None = None
    ) -> torch.Tensor:
        """x [B, C, T], f0 ignored, g [B, gin, 1] -> [B, 1, T·hop]."""
        x = self._head(x, g)
        for i, up in enumerate(self.ups):
            x = self._stage(i, up(F.leaky_relu(x, LRELU_SLOPE)))
        return self._tail(x)

    def remove_weight_norm(self) -> None:
        """Fold weight norm into plain weights (inference)."""
        remove_weight_norm(self)


class HiFiGANNSF(HiFiGAN):
    """Pitch-guided (NSF) HiFi-GAN: latent [B, C, T] + F0 [B, T] Hz -> waveform [B, 1, T·hop]."""

    source_markers = ("m_source.",)  # what sets it apart from the no-F0 HiFiGAN

    def __init__(self, *args: Any, harmonic_num: int = 0, **kwargs: Any) -> None:
        """HiFiGAN's arguments (the vocoder contract; `sr` required) and the source's overtones."""
        super().__init__(*args, **kwargs)
        if self.sample_rate is None:
            raise ValueError("HiFiGANNSF needs sr (the sample rate of its sine source)")
        self.m_source = SourceModuleHnNSF(self.sample_rate, harmonic_num=harmonic_num)
        # bring the sample-rate source down to stage i's rate
        self.noise_convs = nn.ModuleList(
            noise_conv(ch, math.prod(self.upsample_rates[i + 1 :]))
            for i, ch in enumerate(self.channels)
        )

    def forward(
        self, x: torch.Tensor, f0: torch.Tensor | None = None, g: torch.Tensor | None = None
    ) -> torch.Tensor:
        """x [B, C, T], f0 [B, T] Hz, g [B, gin, 1] -> [B, 1, T·hop]."""
        if f0 is None:
            raise ValueError("HiFiGANNSF needs f0 (pitch in Hz per frame)")
        har_source = self.m_source(f0, self.upp)  # [B, 1, T·hop]
        x = self._head(x, g)
        for i, (up, down) in enumerate(zip(self.ups, self.noise_convs, strict=True)):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            x = self._stage(i, x + down(har_source))
        return self._tail(x)
