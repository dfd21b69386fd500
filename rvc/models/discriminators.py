"""RVC's multi-period discriminator: a scale discriminator, period and resolution ones.

The layout is data from the vocoder's YAML (`conf/vocoder/<x>.yaml`): `scale` (the waveform
discriminator first), `periods` and `resolutions` (STFT (n_fft, hop, win) each), in the order
the published D files store them: RVC v1 periods 2..17, v2 2..37, RefineGAN's "v3" 2..11 plus
three resolutions. Each discriminator returns (logits [B, N], feature maps); the ensemble runs
real and fake as one batch.
`width` scales every channel count (and the scale discriminator's groups) for tiny test and
demo models; 1.0 is the published layout that pretrained D files hold.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from einops import rearrange
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import spectral_norm, weight_norm

from rvc.models.commons import conv_stack, get_padding, scaled
from rvc.models.resolution_discriminator import DiscriminatorR


def _norm(use_spectral_norm: bool):
    return spectral_norm if use_spectral_norm else weight_norm


class DiscriminatorS(nn.Module):
    """Scale discriminator: strided grouped 1-D convolutions over the raw waveform."""

    def __init__(self, use_spectral_norm: bool = False, width: float = 1.0) -> None:
        super().__init__()
        norm = _norm(use_spectral_norm)
        specs = [  # (in, out, kernel, stride, groups, padding)
            (1, 16, 15, 1, 1, 7),
            (16, 64, 41, 4, 4, 20),
            (64, 256, 41, 4, 16, 20),
            (256, 1024, 41, 4, 64, 20),
            (1024, 1024, 41, 4, 256, 20),
            (1024, 1024, 5, 1, 1, 2),
        ]
        w = width
        self.convs = nn.ModuleList(
            norm(
                nn.Conv1d(
                    i if i == 1 else scaled(i, w),
                    scaled(o, w),
                    k,
                    s,
                    groups=scaled(g, w),
                    padding=p,
                )
            )
            for i, o, k, s, g, p in specs
        )
        self.conv_post = norm(nn.Conv1d(scaled(1024, w), 1, 3, 1, padding=1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """x [B, 1, T] -> (logits [B, N], feature maps)."""
        return conv_stack(self.convs, self.conv_post, x)


class DiscriminatorP(nn.Module):
    """Period discriminator: folds the waveform into [T / p, p] and convolves along time."""

    def __init__(
        self,
        period: int,
        kernel_size: int = 5,
        stride: int = 3,
        use_spectral_norm: bool = False,
        width: float = 1.0,
    ) -> None:
        super().__init__()
        self.period = period
        norm = _norm(use_spectral_norm)
        chans = [1] + [scaled(c, width) for c in (32, 128, 512, 1024, 1024)]
        strides = [stride, stride, stride, stride, 1]
        pad = (get_padding(kernel_size, 1), 0)
        self.convs = nn.ModuleList(
            norm(nn.Conv2d(chans[i], chans[i + 1], (kernel_size, 1), (strides[i], 1), padding=pad))
            for i in range(5)
        )
        self.conv_post = norm(nn.Conv2d(chans[-1], 1, (3, 1), 1, padding=(1, 0)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """x [B, 1, T] -> (logits [B, N], feature maps)."""
        b, c, t = x.shape
        if t % self.period:
            x = F.pad(x, (0, self.period - t % self.period), mode="reflect")
        x = rearrange(x, "b c (frames p) -> b c frames p", p=self.period)  # [B, 1, T / p, p]
        return conv_stack(self.convs, self.conv_post, x)


class MultiPeriodDiscriminator(nn.Module):
    """The RVC discriminator ensemble: `discriminators.N` are the scale one (if `scale`), then
    one per period, then one per STFT resolution."""

    def __init__(
        self,
        periods: Sequence[int],
        resolutions: Sequence[Sequence[int]] = (),
        scale: bool = True,
        use_spectral_norm: bool = False,
        width: float = 1.0,
    ) -> None:
        super().__init__()
        if isinstance(periods, str) or not all(int(p) >= 1 for p in periods):
            raise ValueError(f"periods must be a list of positive integers, got {periods!r}")
        if any(len(r) != 3 for r in resolutions):
            raise ValueError(f"resolutions must be (n_fft, hop, win) triples, got {resolutions!r}")
        sn, w = use_spectral_norm, width
        discs: list[nn.Module] = [DiscriminatorS(sn, width=w)] if scale else []
        discs += [DiscriminatorP(int(p), use_spectral_norm=sn, width=w) for p in periods]
        discs += [DiscriminatorR(tuple(r), use_spectral_norm=sn, width=w) for r in resolutions]
        if not discs:
            raise ValueError("a discriminator needs a scale, period or resolution part")
        self.discriminators = nn.ModuleList(discs)

    def forward(
        self, y: torch.Tensor, y_hat: torch.Tensor
    ) -> tuple[
        list[torch.Tensor], list[torch.Tensor], list[list[torch.Tensor]], list[list[torch.Tensor]]
    ]:
        """Real y and fake y_hat [B, 1, T] -> (real logits, fake logits, real fmaps, fake fmaps)."""
        b = y.size(0)
        both = y.shape == y_hat.shape
        # one pass over the concatenated batch: half the launches and weight-norm recomputes
        x = torch.cat([y, y_hat.to(y.dtype)], dim=0) if both else None
        real_logits, fake_logits, real_fmaps, fake_fmaps = [], [], [], []
        for d in self.discriminators:
            if both:
                logits, fmap = d(x)
                real_logits.append(logits[:b])
                fake_logits.append(logits[b:])
                real_fmaps.append([f[:b] for f in fmap])
                fake_fmaps.append([f[b:] for f in fmap])
            else:
                logits_r, fmap_r = d(y)
                logits_g, fmap_g = d(y_hat)
                real_logits.append(logits_r)
                fake_logits.append(logits_g)
                real_fmaps.append(fmap_r)
                fake_fmaps.append(fmap_g)
        return real_logits, fake_logits, real_fmaps, fake_fmaps
