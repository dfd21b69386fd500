"""RVC's GAN losses: least-squares adversarial, feature matching, mel L1 and the VITS KL.

Pure functions plus two small modules that weight and sum them. The only place the fake
waveform is detached for the discriminator step is `DiscriminatorLoss.forward`. Weights come
from the constructor; RVC's hard-wired `feature_loss × 2` is expressed as the default fm
weight 2.0, so the defaults reproduce RVC's total: adv + 2·fm + 45·mel + 1·KL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn
from torch.nn import functional as F

Logits = Sequence[torch.Tensor]
FeatureMaps = Sequence[Sequence[torch.Tensor]]


def discriminator_loss(
    real_logits: Logits, fake_logits: Logits
) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
    """Σ_d mean((1 − D(y))²) + mean(D(ŷ)²) -> (total, per-D real terms, per-D fake terms)."""
    real_terms = [torch.mean((1 - dr.float()) ** 2) for dr in real_logits]
    fake_terms = [torch.mean(dg.float() ** 2) for dg in fake_logits]
    total = torch.stack(real_terms).sum() + torch.stack(fake_terms).sum()
    return total, real_terms, fake_terms


def generator_loss(fake_logits: Logits) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Σ_d mean((1 − D(ŷ))²) -> (total, per-D terms)."""
    terms = [torch.mean((1 - dg.float()) ** 2) for dg in fake_logits]
    return torch.stack(terms).sum(), terms


def feature_loss(real_fmaps: FeatureMaps, fake_fmaps: FeatureMaps) -> torch.Tensor:
    """Σ over discriminators and layers of mean |f(y) − f(ŷ)| (real maps are targets)."""
    terms = [
        torch.mean(torch.abs(r.detach().float() - g.float()))
        for dr, dg in zip(real_fmaps, fake_fmaps, strict=True)
        for r, g in zip(dr, dg, strict=True)
    ]
    return torch.stack(terms).sum()


def kl_loss(
    z_p: torch.Tensor,
    logs_q: torch.Tensor,
    m_p: torch.Tensor,
    logs_p: torch.Tensor,
    z_mask: torch.Tensor,
) -> torch.Tensor:
    """KL(q ‖ p) sampled at z_p, summed over channels, averaged over valid frames (as RVC).

    z_p, logs_q, m_p, logs_p [B, C, T]; z_mask [B, 1, T].
    """
    z_p, logs_q, m_p, logs_p = (t.float() for t in (z_p, logs_q, m_p, logs_p))
    kl = logs_p - logs_q - 0.5 + 0.5 * (z_p - m_p) ** 2 * torch.exp(-2.0 * logs_p)
    return torch.sum(kl * z_mask) / torch.sum(z_mask)


def mel_l1(real_mel: torch.Tensor, fake_mel: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of two log-mels [B, n_mels, T] (not waveforms: see LogMelL1)."""
    return F.l1_loss(fake_mel.float(), real_mel.float())


class LogMelL1(nn.Module):
    """Log-mel L1 between two waveforms with the model's mel settings (RVC's mel term).

    Takes waveforms, like `MultiScaleMelLoss`, so either is a `GeneratorLoss` waveform term and
    the training step stays the same. RVC cuts the real mel out of the whole slice's spectrogram;
    here it is computed on the real segment itself, which differs only in its edge frames.
    """

    def __init__(self, mel: nn.Module) -> None:
        super().__init__()
        self.mel = mel

    def forward(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """real, fake [B, 1, T] -> scalar; mels in fp32 even under autocast."""
        with torch.autocast(device_type=real.device.type, enabled=False):
            return mel_l1(self.mel(real.float()), self.mel(fake.float()))


class DiscriminatorLoss(nn.Module):
    """Run D on real and detached fake audio; least-squares loss terms keyed `d/...`."""

    def forward(
        self, discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """real, fake [B, 1, T] -> {"d/loss", "d/real", "d/fake"}."""
        real_logits, fake_logits, _, _ = discriminator(real, fake.detach())
        total, real_terms, fake_terms = discriminator_loss(real_logits, fake_logits)
        return {
            "d/loss": total,
            "d/real": torch.stack(real_terms).sum().detach(),
            "d/fake": torch.stack(fake_terms).sum().detach(),
        }


class _Fn(nn.Module):
    """A plain loss function as a module (so a term list holds functions and modules alike)."""

    def __init__(self, fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return self.fn(real, fake)


class GeneratorLoss(nn.Module):
    """The generator objective as a weighted sum of named terms (descript-audio-codec's
    `lambdas`): returns raw terms `g/<name>`, weighted `g/<name>_weighted` and the total `g/loss`.

    `weights` names every term: the GAN's own `adv` (least squares), `fm` (feature matching) and
    `kl` (skipped without kl_stats), and each of `waveform_terms`, losses of the real and fake
    waveforms [B, 1, T] (RVC's mel L1, the multi-scale mel, ...), so a vocoder adds a term in
    its YAML. A weight without its term, or a term without its weight, fails here.
    """

    GAN_TERMS = ("adv", "fm", "kl")

    def __init__(
        self,
        weights: Mapping[str, float],
        waveform_terms: Mapping[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]
        | None = None,
    ) -> None:
        super().__init__()
        terms = dict(waveform_terms or {})
        clash = sorted(set(terms) & set(self.GAN_TERMS))
        unweighted = sorted(set(terms) - set(weights))
        no_term = sorted(set(weights) - set(terms) - set(self.GAN_TERMS))
        missing = sorted(set(self.GAN_TERMS) - set(weights))
        problems = [
            *(f"waveform term {n!r} shadows the GAN's own term" for n in clash),
            *(f"waveform term {n!r} has no weight" for n in unweighted),
            *(f"weight {n!r} names no term (waveform terms: {sorted(terms)})" for n in no_term),
            *(f"no weight for the GAN term {n!r} (0 turns it off)" for n in missing),
        ]
        if problems:
            raise ValueError("generator_loss: " + "; ".join(problems))
        self.weights = {name: float(w) for name, w in weights.items()}
        # modules (mels with buffers) move with the loss; plain functions are wrapped
        self.waveform_terms = nn.ModuleDict(
            {n: t if isinstance(t, nn.Module) else _Fn(t) for n, t in terms.items()}
        )

    def forward(
        self,
        discriminator: nn.Module,
        real: torch.Tensor,
        fake: torch.Tensor,
        kl_stats: tuple[torch.Tensor, ...] | None = None,
    ) -> dict[str, torch.Tensor]:
        """real, fake waveforms [B, 1, T]; kl_stats (z_p, logs_q, m_p, logs_p, z_mask) or None
        to skip the KL term."""
        _, fake_logits, real_fmaps, fake_fmaps = discriminator(real, fake)
        # summed in this order (waveform terms, adv, fm, kl): the order RVC adds them in
        raw = {name: term(real, fake) for name, term in self.waveform_terms.items()}
        raw["adv"] = generator_loss(fake_logits)[0]
        raw["fm"] = feature_loss(real_fmaps, fake_fmaps)
        if kl_stats is not None:
            raw["kl"] = kl_loss(*kl_stats)
        out: dict[str, torch.Tensor] = {}
        total = None
        for name, value in raw.items():
            weighted = value * self.weights[name]
            total = weighted if total is None else total + weighted
            out[f"g/{name}"] = value.detach()
            out[f"g/{name}_weighted"] = weighted.detach()
        out["g/loss"] = total
        return out
