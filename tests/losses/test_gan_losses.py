"""GAN, feature-matching, mel and KL losses, and the weighted loss objects."""

from __future__ import annotations

import math

import pytest
import torch

from rvc.losses.gan import (
    DiscriminatorLoss,
    GeneratorLoss,
    discriminator_loss,
    feature_loss,
    generator_loss,
    kl_loss,
)
from rvc.models.discriminators import DiscriminatorP, MultiPeriodDiscriminator


class TinyMPD(MultiPeriodDiscriminator):
    """The real ensemble logic over two small period discriminators (fast on CPU)."""

    def __init__(self) -> None:
        torch.nn.Module.__init__(self)
        self.discriminators = torch.nn.ModuleList([DiscriminatorP(2), DiscriminatorP(3)])


def test_least_squares_terms():
    ones, zeros = [torch.ones(2, 5)] * 3, [torch.zeros(2, 5)] * 3
    total, real, fake = discriminator_loss(ones, zeros)
    assert total.item() == 0 and len(real) == len(fake) == 3
    assert discriminator_loss(zeros, ones)[0].item() == pytest.approx(6.0)
    assert generator_loss(ones)[0].item() == 0
    assert generator_loss([torch.full((1, 4), 3.0)])[0].item() == pytest.approx(4.0)


def test_feature_loss_sums_mean_abs_and_stops_at_real():
    real = [[torch.zeros(1, 3), torch.ones(2, 2)]]
    fake = [[torch.full((1, 3), 2.0, requires_grad=True), torch.ones(2, 2)]]
    assert feature_loss(real, fake).item() == pytest.approx(2.0)
    r = torch.randn(1, 4, requires_grad=True)
    assert not feature_loss([[r]], [[torch.zeros(1, 4)]]).requires_grad  # real maps are targets


def test_kl_loss_closed_form():
    m = torch.randn(1, 3, 5)
    logs = torch.zeros(1, 3, 5)
    mask = torch.ones(1, 1, 5)
    # RVC's KL is summed over channels and averaged over valid frames. With q = p and z_p at
    # the mean each element's sample is exactly -0.5, so 3 channels give -1.5 per frame
    assert kl_loss(m, logs, m, logs, mask).item() == pytest.approx(-1.5)
    shifted = kl_loss(m + 2.0, logs, m, logs, mask)  # 0.5·2² more per element
    assert shifted.item() == pytest.approx(-1.5 + 3 * 2.0)
    mask[..., 3:] = 0  # padded frames do not count
    garbage = m.clone()
    garbage[..., 3:] += 100
    assert kl_loss(garbage, logs, m, logs, mask).item() == pytest.approx(-1.5)


def _wavs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    real = torch.randn(2, 1, 600, generator=g) * 0.3
    gen_param = torch.nn.Parameter(torch.randn(2, 1, 600, generator=g) * 0.3)
    return real, gen_param


RVC_WEIGHTS = {"mel": 45.0, "adv": 1.0, "fm": 2.0, "kl": 1.0}


def _l1(real, fake):
    return (real - fake).abs().mean()


def test_every_generator_term_is_finite_and_non_zero():
    torch.manual_seed(0)
    d = TinyMPD()
    real, fake = _wavs()
    stats = (torch.randn(2, 4, 6), torch.randn(2, 4, 6), torch.randn(2, 4, 6), torch.randn(2, 4, 6))
    loss = GeneratorLoss(RVC_WEIGHTS, {"mel": _l1})
    out = loss(d, real, fake, kl_stats=(*stats, torch.ones(2, 1, 6)))
    for name, weight in RVC_WEIGHTS.items():
        raw, weighted = out[f"g/{name}"], out[f"g/{name}_weighted"]
        assert math.isfinite(raw.item()) and raw.item() != 0, name
        assert weighted.item() == pytest.approx(raw.item() * weight, rel=1e-5)
    total = sum(out[f"g/{n}_weighted"] for n in RVC_WEIGHTS)
    assert out["g/loss"].item() == pytest.approx(total.item(), rel=1e-5)
    assert out["g/mel"].item() == pytest.approx(_l1(real, fake).item())
    out["g/loss"].backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0


def test_weights_come_from_the_constructor():
    torch.manual_seed(0)
    d = TinyMPD()
    real, fake = _wavs(1)
    a = GeneratorLoss(RVC_WEIGHTS, {"mel": _l1})(d, real, fake)
    b = GeneratorLoss({**RVC_WEIGHTS, "mel": 15.0, "fm": 0.0}, {"mel": _l1})(d, real, fake)
    assert "g/kl" not in a  # no stats, no KL term
    assert b["g/mel_weighted"].item() == pytest.approx(a["g/mel_weighted"].item() / 3, rel=1e-5)
    assert b["g/fm_weighted"].item() == 0


def test_a_waveform_term_added_by_config_is_logged_weighted_and_summed():
    torch.manual_seed(0)
    seen = []

    def stft_l1(real, fake):  # what a vocoder YAML would add under waveform_terms
        seen.append((real.shape, fake.shape))
        return _l1(torch.stft(real[:, 0], 64, return_complex=True).abs(),
                   torch.stft(fake[:, 0], 64, return_complex=True).abs())  # fmt: skip

    real, fake = _wavs(2)
    terms = {"mel": _l1, "stft": stft_l1}
    out = GeneratorLoss({**RVC_WEIGHTS, "stft": 0.5}, terms)(TinyMPD(), real, fake)
    assert seen == [(real.shape, fake.shape)]  # waveforms in, once
    assert out["g/stft"].item() > 0
    assert out["g/stft_weighted"].item() == pytest.approx(0.5 * out["g/stft"].item(), rel=1e-6)
    parts = sum(out[f"g/{n}_weighted"] for n in ("mel", "stft", "adv", "fm"))
    assert out["g/loss"].item() == pytest.approx(parts.item(), rel=1e-5)


@pytest.mark.parametrize(
    "weights,terms,match",
    [
        ({**RVC_WEIGHTS}, {}, "weight 'mel' names no term"),  # the old waveform-L1 trap
        ({"adv": 1, "fm": 2, "kl": 1}, {"mel": _l1}, "'mel' has no weight"),
        ({"mel": 45, "fm": 2, "kl": 1}, {"mel": _l1}, "no weight for the GAN term 'adv'"),
        ({**RVC_WEIGHTS}, {"mel": _l1, "fm": _l1}, "'fm' shadows"),
    ],
)
def test_a_missing_or_stray_term_fails_when_built(weights, terms, match):
    with pytest.raises(ValueError, match=match):
        GeneratorLoss(weights, terms)


def test_discriminator_step_does_not_reach_generator():
    torch.manual_seed(0)
    d = TinyMPD()
    generator = torch.nn.Conv1d(1, 1, 3, padding=1)
    real = torch.randn(2, 1, 600) * 0.3
    fake = generator(torch.randn(2, 1, 600))
    out = DiscriminatorLoss()(d, real, fake)
    assert set(out) == {"d/loss", "d/real", "d/fake"}
    assert all(math.isfinite(v.item()) and v.item() > 0 for v in out.values())
    out["d/loss"].backward()
    assert all(p.grad is None for p in generator.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in d.parameters())
