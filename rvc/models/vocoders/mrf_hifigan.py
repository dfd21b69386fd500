"""MRF HiFi-GAN vocoder: NSF HiFi-GAN with multi-receptive-field blocks and an 8-harmonic source.

State-dict names and forward math follow Applio's `HiFiGANMRFGenerator`: `m_source.l_linear`
Linear(9, 1), `conv_pre`, `upsamples.N`, `noise_convs.N`, `mrfs.N.M.layers.K.conv1/conv2`,
`conv_post`, `cond`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rvc.formats import parse_sample_rate
from rvc.models.commons import LRELU_SLOPE, checkpointed, get_padding, remove_weight_norm, wn
from rvc.models.nsf import SourceModuleHnNSF
from rvc.models.vocoders.base import Vocoder, child_indices, kernel_sizes, weight_shape
from rvc.models.vocoders.hifigan import branch_mean, noise_conv, upsample_layer


class MRFLayer(nn.Module):
    """x + conv2(lrelu(conv1(lrelu(x)))), conv1 dilated."""

    def __init__(self, channels: int, kernel_size: int, dilation: int) -> None:
        super().__init__()
        pad = get_padding(kernel_size, dilation)
        self.conv1 = wn(nn.Conv1d(channels, channels, kernel_size, dilation=dilation, padding=pad))
        self.conv2 = wn(
            nn.Conv1d(channels, channels, kernel_size, padding=get_padding(kernel_size))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(F.leaky_relu(x, LRELU_SLOPE))
        return x + self.conv2(F.leaky_relu(y, LRELU_SLOPE))


class MRFBlock(nn.Module):
    """A chain of MRF layers with one kernel size and growing dilations."""

    def __init__(self, channels: int, kernel_size: int, dilations: list[int]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(MRFLayer(channels, kernel_size, d) for d in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class MRFHiFiGAN(Vocoder):
    """MRF HiFi-GAN generator: latent [B, C, T] + F0 [B, T] Hz + speaker [B, gin, 1] -> wave."""

    state_markers = ("upsamples.", "mrfs.")
    source_markers = ("m_source.",)

    @classmethod
    def read_state(cls, state: Mapping[str, Any]) -> dict[str, Any]:
        """Upsample and noise-conv kernels, stage count, MRF kernels, initial channels."""
        ups = kernel_sizes(state, "upsamples")  # ConvTranspose1d weight: [in, out, kernel]
        blocks = child_indices(state, "mrfs.0")
        return {
            "upsample_kernel_sizes": ups,
            "n_stages": len(ups),
            "noise_conv_kernels": kernel_sizes(state, "noise_convs"),
            "resblock_kernel_sizes": [
                weight_shape(state, f"mrfs.0.{i}.layers.0.conv1")[-1] for i in blocks
            ],
            "upsample_initial_channel": weight_shape(state, "conv_pre")[0],
        }

    def __init__(
        self,
        initial_channel: int,
        resblock_kernel_sizes: list[int],
        resblock_dilation_sizes: list[list[int]],
        upsample_rates: list[int],
        upsample_initial_channel: int,
        upsample_kernel_sizes: list[int],
        gin_channels: int,
        sr: int,
        harmonic_num: int = 8,
        checkpointing: bool = False,
        **extra: object,
    ) -> None:
        super().__init__()
        if extra:
            raise TypeError(f"MRFHiFiGAN got unexpected arguments: {', '.join(sorted(extra))}")
        self.upsample_rates = [int(u) for u in upsample_rates]
        self.upp = math.prod(self.upsample_rates)
        self.checkpointing = checkpointing
        # overtone start phases drawn per item, as Applio's MRF generator does
        self.m_source = SourceModuleHnNSF(
            parse_sample_rate(sr), harmonic_num=harmonic_num, per_item_phase=True
        )
        self.conv_pre = wn(nn.Conv1d(initial_channel, upsample_initial_channel, 7, padding=3))

        self.upsamples = nn.ModuleList()
        self.noise_convs = nn.ModuleList()
        self.mrfs = nn.ModuleList()
        for i, (u, k) in enumerate(zip(self.upsample_rates, upsample_kernel_sizes, strict=True)):
            c_in, c_out = upsample_initial_channel // 2**i, upsample_initial_channel // 2 ** (i + 1)
            self.upsamples.append(upsample_layer(c_in, c_out, u, k))
            # the sample-rate source is strided down to this stage's rate
            self.noise_convs.append(noise_conv(c_out, math.prod(self.upsample_rates[i + 1 :])))
            self.mrfs.append(
                nn.ModuleList(
                    MRFBlock(c_out, k_r, list(d))
                    for k_r, d in zip(resblock_kernel_sizes, resblock_dilation_sizes, strict=True)
                )
            )
        self.conv_post = wn(nn.Conv1d(c_out, 1, 7, padding=3))
        if gin_channels:
            self.cond = nn.Conv1d(gin_channels, upsample_initial_channel, 1)

    def _stage(self, x: torch.Tensor, har: torch.Tensor, i: int) -> torch.Tensor:
        """One upsampling stage: lrelu, transposed conv, add source, mean of the MRF blocks."""
        x = self.upsamples[i](F.leaky_relu(x, LRELU_SLOPE))
        x = x + self.noise_convs[i](har)
        return branch_mean(self.mrfs[i], x)

    def forward(
        self, x: torch.Tensor, f0: torch.Tensor, g: torch.Tensor | None = None
    ) -> torch.Tensor:
        """x [B, C, T], f0 [B, T] Hz, g [B, gin, 1] -> waveform [B, 1, T·hop]."""
        har = self.m_source(f0, self.upp)  # [B, 1, N] excitation at the sample rate
        x = self.conv_pre(x)  # [B, C0, T]
        if g is not None and hasattr(self, "cond"):
            x = x + self.cond(g)
        for i in range(len(self.upsamples)):
            x = checkpointed(self, self._stage, x, har, i)
        # default 0.01 slope here, as in HiFi-GAN and Applio
        return torch.tanh(self.conv_post(F.leaky_relu(x)))  # [B, 1, N]

    def remove_weight_norm(self) -> None:
        """Fold every weight-norm parametrization into a plain weight (for inference)."""
        remove_weight_norm(self)
