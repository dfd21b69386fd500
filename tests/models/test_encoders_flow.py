"""enc_p, enc_q, WN and the flow: masking, invertibility, conditioning."""

from __future__ import annotations

import torch

from rvc.models.encoders import WN, PosteriorEncoder, TextEncoder
from rvc.models.flow import ResidualCouplingBlock


def _mask(lengths: list[int], t: int) -> torch.Tensor:
    return (torch.arange(t)[None] < torch.tensor(lengths)[:, None]).unsqueeze(1).float()


def test_flow_reverse_inverts_forward():
    torch.manual_seed(0)
    flow = ResidualCouplingBlock(8, 16, 5, 1, 3, gin_channels=4)
    with torch.no_grad():  # the post layers start at zero (identity flow); make them act
        for p in flow.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    x, g = torch.randn(2, 8, 15), torch.randn(2, 4, 1)
    mask = _mask([15, 9], 15)
    x = x * mask
    z_p = flow(x, mask, g=g)
    assert (z_p - x).abs().max() > 1e-3
    torch.testing.assert_close(flow(z_p, mask, g=g, reverse=True), x, rtol=1e-5, atol=1e-5)
    assert [type(f).__name__ for f in flow.flows][:2] == ["ResidualCouplingLayer", "Flip"]
    assert not list(flow.flows[1].parameters())


def test_fresh_flow_is_a_pure_permutation():
    flow = ResidualCouplingBlock(8, 16, 5, 1, 3)
    x = torch.randn(1, 8, 6)
    torch.testing.assert_close(flow(x, torch.ones(1, 1, 6)), x)  # 4 flips cancel out


def test_wn_masks_and_uses_condition():
    torch.manual_seed(0)
    net = WN(16, 5, 1, 4, gin_channels=4)
    x, mask = torch.randn(2, 16, 12), _mask([12, 7], 12)
    g1, g2 = torch.randn(2, 4, 1), torch.randn(2, 4, 1)
    a, b = net(x, mask, g=g1), net(x, mask, g=g2)
    assert a.shape == x.shape and a[1, :, 7:].abs().max() == 0
    assert (a - b).abs().max() > 1e-4


def test_text_encoder_masks_padding_and_skips_pitch():
    torch.manual_seed(0)
    enc = TextEncoder(8, 16, 32, 2, 2, 3, 0.0, embedding_dim=256, f0=True)
    phone, pitch = torch.randn(2, 11, 256), torch.randint(1, 256, (2, 11))
    m, logs, mask = enc(phone, pitch, torch.tensor([11, 6]))
    assert m.shape == logs.shape == (2, 8, 11) and mask.shape == (2, 1, 11)
    assert m[1, :, 6:].abs().max() == 0 and logs[1, :, 6:].abs().max() == 0
    m_no_pitch, _, _ = enc(phone, None, torch.tensor([11, 6]))
    assert (m - m_no_pitch).abs().max() > 1e-4
    assert TextEncoder(8, 16, 32, 2, 2, 3, 0.0, 768, f0=False).emb_pitch is None


def test_posterior_encoder_samples_around_mean():
    torch.manual_seed(0)
    enc = PosteriorEncoder(33, 8, 16, 5, 1, 4, gin_channels=4)
    y, g = torch.rand(2, 33, 10), torch.randn(2, 4, 1)
    z, m, logs, mask = enc(y, torch.tensor([10, 4]), g=g)
    assert z.shape == m.shape == logs.shape == (2, 8, 10)
    assert z[1, :, 4:].abs().max() == 0
    assert (z - m).abs().max() > 0  # sampled, not the mean
