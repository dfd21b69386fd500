"""RefineGAN vocoder: a sine source, downsampled to every scale, fused into a linear-upsampling net.

State-dict names and forward math follow Applio's `RefineGANGenerator`, so its pretrained `dec`
weights load unchanged: `m_source.merge`, `pre_conv`, `downsample_blocks.N`, `mel_conv`, `cond`,
`upsample_conv_blocks.N.{input_conv, blocks.M.{0,1,2}}`, `conv_post`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rvc.formats import parse_sample_rate
from rvc.models.commons import checkpointed, remove_weight_norm, wn
from rvc.models.nsf import SineSource
from rvc.models.vocoders.base import Vocoder, child_indices, weight_shape
from rvc.models.vocoders.hifigan import ResBlock, branch_mean

LRELU_SLOPE = 0.2
# Applio's anti-aliasing resampler: torchaudio's Kaiser-windowed sinc with these settings
_SINC_WIDTH = 64
_SINC_ROLLOFF = 0.9475937167399596
_SINC_BETA = 14.769656459379492


def sinc_downsample_kernel(factor: int) -> torch.Tensor:
    """The Kaiser-sinc low-pass FIR that torchaudio's `resample(factor → 1)` applies; [K]."""
    base = _SINC_ROLLOFF  # min(orig, new) * rolloff with new = 1
    width = math.ceil(_SINC_WIDTH * factor / base)
    t = torch.arange(-width, width + factor, dtype=torch.float64) / factor * base
    t = t.clamp(-_SINC_WIDTH, _SINC_WIDTH)
    beta = torch.tensor(_SINC_BETA, dtype=torch.float64)
    window = torch.i0(beta * torch.sqrt(1 - (t / _SINC_WIDTH) ** 2)) / torch.i0(beta)
    t = t * math.pi
    sinc = torch.where(t == 0, torch.ones_like(t), torch.sin(t) / t)
    return (sinc * window * base / factor).float()


class SincDownsample(nn.Module):
    """Anti-aliased integer downsampling of every channel: [B, C, T] -> [B, C, T // factor]."""

    def __init__(self, factor: int) -> None:
        super().__init__()
        self.factor = factor
        kernel = sinc_downsample_kernel(factor)
        self.width = (kernel.numel() - factor) // 2
        # not persistent: derived from `factor`, so it stays out of the state dict
        self.register_buffer("kernel", kernel.view(1, 1, -1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t = x.shape
        y = F.pad(x.reshape(b * c, 1, t), (self.width, self.width + self.factor))
        y = F.conv1d(y, self.kernel.to(x.dtype), stride=self.factor)  # [B*C, 1, T//f + 1]
        return y[..., : t // self.factor].reshape(b, c, -1)


def wrapped_cumsum(v: torch.Tensor, dim: int) -> torch.Tensor:
    """Running sum mod 1 of values in [0, 1) along `dim`, accurate in float32 for long inputs."""
    # A plain cumsum grows with length and loses precision; subtracting 1 at every wrap (found
    # from that rough cumsum) keeps the partial sums in [0, 1).
    rough = v.cumsum(dim) % 1
    # slices, not Tensor.diff: the ONNX exporter has no aten::diff (and wants positive dims)
    dim, last = dim % v.dim(), v.dim() - 1
    r = rough.movedim(dim, last)
    wraps = ((r[..., 1:] - r[..., :-1]).movedim(last, dim) < 0).to(v.dtype)
    shift = torch.cat([torch.zeros_like(v.narrow(dim, 0, 1)), -wraps], dim=dim)
    return (v + shift).cumsum(dim) % 1


def sine_phase(rad: torch.Tensor, frames: int) -> torch.Tensor:
    """Running phase (turns, mod 1) of per-sample increments rad [B, N, H] in [0, 1), N = frames·hop."""
    b, n, h = rad.shape
    # two levels: a short cumsum inside each frame, then the frame carries wrapped mod 1
    inner = rad.reshape(b, frames, n // frames, h).cumsum(2)  # [B, T, hop, H]
    carry = inner[:, :, -1] % 1  # [B, T, H]
    offset = wrapped_cumsum(carry, 1) - carry  # exclusive running sum, in (-1, 1)
    return (inner + offset.unsqueeze(2)).reshape(b, n, h) % 1


class RefineGANSource(SineSource):
    """Sine excitation from sample-rate F0, merged by a bias-free Linear + tanh (no harmonics)."""

    def __init__(self, sample_rate: int, **settings: float) -> None:
        """`settings`: SineSource's harmonic_num, sine_amp, noise_std, voiced_threshold."""
        super().__init__(sample_rate, **settings)
        self.merge = nn.Sequential(nn.Linear(self.dim, 1, bias=False), nn.Tanh())

    def forward(self, f0: torch.Tensor, frames: int) -> torch.Tensor:
        """f0 [B, N, 1] Hz at the sample rate -> excitation [B, N, 1]."""
        with torch.no_grad():
            harmonics = torch.arange(1, self.dim + 1, device=f0.device, dtype=f0.dtype)
            rad = (f0 * harmonics / self.sample_rate) % 1  # [B, N, H] turns per sample
            if self.phase0 is not None:  # live conversion: continue the last block's phase
                rad[:, :1, :] += self.start_phases(harmonics, f0.shape[0]).to(rad)
            elif self.dim > 1:  # random start phase for the overtones only
                rand_ini = torch.rand(f0.shape[0], 1, self.dim, device=f0.device, dtype=f0.dtype)
                rad[:, :1, 1:] += rand_ini[:, :, 1:]
            sines = torch.sin(2 * math.pi * sine_phase(rad, frames)) * self.sine_amp
            uv = (f0 > self.voiced_threshold).to(f0.dtype)  # [B, N, 1]
            excitation = self.add_noise(sines, uv)
        return self.merge(excitation.to(self.merge[0].weight.dtype))


class AdaIN(nn.Module):
    """Learned per-channel Gaussian noise injection followed by leaky ReLU."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.full((channels,), 1e-4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # randn, not randn_like: torch 2.11's AOT CSE merges randn_like calls on the same tensor,
        # which would give the parallel AdaIN branches one shared noise under compile
        noise = torch.randn(x.shape, device=x.device, dtype=x.dtype)
        return F.leaky_relu(x + noise * self.weight[None, :, None], LRELU_SLOPE)


class ParallelResBlock(nn.Module):
    """A 7-tap input conv, then the mean of parallel AdaIN → ResBlock → AdaIN branches."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_sizes: list[int],
        dilations: list[list[int]],
    ) -> None:
        super().__init__()
        self.input_conv = nn.Conv1d(in_channels, out_channels, 7, padding=3)
        nn.init.normal_(self.input_conv.weight, 0.0, 0.01)  # as Applio's init_weights
        # HiFi-GAN's ResBlock1, with RefineGAN's slope-0.2 leaky ReLUs
        self.blocks = nn.ModuleList(
            nn.Sequential(
                AdaIN(out_channels),
                ResBlock(out_channels, k, d, slope=LRELU_SLOPE),
                AdaIN(out_channels),
            )
            for k, d in zip(kernel_sizes, dilations, strict=True)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return branch_mean(self.blocks, self.input_conv(x))


class RefineGAN(Vocoder):
    """RefineGAN generator: latent [B, C, T] + F0 [B, T] Hz + speaker [B, gin, 1] -> wave."""

    state_markers = ("downsample_blocks.", "upsample_conv_blocks.", "mel_conv.")
    source_markers = ("m_source.",)

    @classmethod
    def read_state(cls, state: Mapping[str, Any]) -> dict[str, Any]:
        """Stage count (one downsample block per stage), branch kernels, initial channels.
        Upsampling is by interpolation: no kernel is stored, so the rate is often a guess."""
        facts: dict[str, Any] = {"n_stages": len(child_indices(state, "downsample_blocks"))}
        # parallel branches `upsample_conv_blocks.0.blocks.M.1` (the ResBlock after AdaIN)
        ids = child_indices(state, "upsample_conv_blocks.0.blocks")
        shapes = [weight_shape(state, f"upsample_conv_blocks.0.blocks.{i}.1.convs1.0") for i in ids]
        if ids and all(shapes):
            facts["resblock_kernel_sizes"] = [s[-1] for s in shapes]
        if mel := weight_shape(state, "mel_conv"):  # Conv1d(inter, initial // 2, 7)
            facts["upsample_initial_channel"] = mel[0] * 2
        return facts

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
        checkpointing: bool = False,
        **extra: object,
    ) -> None:
        super().__init__()
        # Applio hard-codes branches of kernels (3, 7, 11) with dilations (1, 3, 5), 512 initial
        # channels and a 256-dim speaker: exactly the values of every RVC config, so we take them
        # from the config (a debug config can shrink them). Upsampling is linear interpolation,
        # so upsample_kernel_sizes is unused.
        if extra:
            raise TypeError(f"RefineGAN got unexpected arguments: {', '.join(sorted(extra))}")
        self.upsample_rates = [int(u) for u in upsample_rates]
        self.upp = math.prod(self.upsample_rates)
        self.checkpointing = checkpointing
        n = len(self.upsample_rates)
        # the source path doubles channels n times and must meet the latent path at half the
        # initial channels (16 for 512 and four stages, as Applio)
        start_channels = upsample_initial_channel >> (n + 1)
        if start_channels < 1 or start_channels << (n + 1) != upsample_initial_channel:
            raise ValueError(
                f"RefineGAN needs upsample_initial_channel divisible by 2**{n + 1}, "
                f"got {upsample_initial_channel}"
            )
        self.m_source = RefineGANSource(parse_sample_rate(sr))
        self.pre_conv = wn(nn.Conv1d(1, start_channels, 7, padding=3))

        # the source is brought down through the reversed upsample rates, doubling channels
        channels = start_channels
        self.downsample_blocks = nn.ModuleList()
        self.downsamplers = nn.ModuleList()
        for rate in reversed(self.upsample_rates):
            self.downsamplers.append(SincDownsample(rate))
            self.downsample_blocks.append(wn(nn.Conv1d(channels, channels * 2, 7, padding=3)))
            channels *= 2

        channels = upsample_initial_channel
        self.mel_conv = wn(nn.Conv1d(initial_channel, channels // 2, 7, padding=3))
        if gin_channels:
            self.cond = nn.Conv1d(gin_channels, channels // 2, 1)

        self.upsample_conv_blocks = nn.ModuleList()
        for _ in self.upsample_rates:
            # input: upsampled trunk (channels) + the source branch of this scale (channels // 4)
            self.upsample_conv_blocks.append(
                ParallelResBlock(
                    channels + channels // 4,
                    channels // 2,
                    resblock_kernel_sizes,
                    resblock_dilation_sizes,
                )
            )
            channels //= 2
        self.conv_post = wn(nn.Conv1d(channels, 1, 7, padding=3, bias=False))

    def forward(
        self, x: torch.Tensor, f0: torch.Tensor, g: torch.Tensor | None = None
    ) -> torch.Tensor:
        """x [B, C, T], f0 [B, T] Hz, g [B, gin, 1] -> waveform [B, 1, T·hop]."""
        frames = x.shape[-1]
        # the phase of the source needs fp32 whatever the model's dtype
        f0 = F.interpolate(f0[:, None].float(), size=frames * self.upp, mode="linear")  # [B, 1, N]
        har = self.m_source(f0.transpose(1, 2), frames).transpose(1, 2)  # [B, 1, N]

        s = self.pre_conv(har)  # [B, 16, N]
        downs = []
        for down, conv in zip(self.downsamplers, self.downsample_blocks, strict=True):
            s = F.leaky_relu(s, LRELU_SLOPE)
            downs.append(s)
            s = conv(down(s))  # [B, 2c, N / rate]

        mel = self.mel_conv(x)  # [B, ch/2, T]
        if g is not None and hasattr(self, "cond"):
            mel = mel + self.cond(g)
        x = torch.cat([mel, s], dim=1)  # [B, ch, T]

        for rate, block, skip in zip(
            self.upsample_rates, self.upsample_conv_blocks, reversed(downs), strict=True
        ):
            x = F.leaky_relu(x, LRELU_SLOPE)
            x = F.interpolate(x, scale_factor=float(rate), mode="linear")
            x = torch.cat([x, skip], dim=1)
            x = checkpointed(self, block, x)

        x = self.conv_post(F.leaky_relu(x, LRELU_SLOPE))
        return torch.tanh(x)  # [B, 1, N]

    def remove_weight_norm(self) -> None:
        """Fold every weight-norm parametrization into a plain weight (for inference)."""
        remove_weight_norm(self)
