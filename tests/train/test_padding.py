"""An item's training losses do not depend on how far its batch pads it.

Batched with a longer item, a clip is zero-padded to the batch's length (and to the
DataModule's `frame_multiple`). Applio takes each clip's spectrogram over its own length, so the
padding never reaches enc_q; ours must do the same (issue 17 §5), or the clip's posterior, KL and
mel loss change with its batch-mates. Fails on a batch-wide STFT of the padded wave.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import rvc.models.encoders as encoders
from rvc.train.step import frozen
from tests.train.conftest import batch_for, build_gan, train_cfg

PAD_FRAMES = 14  # what a batch-mate 14 frames longer adds


def _padded(batch: dict[str, torch.Tensor], frames: int, hop: int) -> dict[str, torch.Tensor]:
    """The same single item, zero-padded by `frames` frames (lengths unchanged)."""
    out = dict(batch)
    out["phone"] = F.pad(batch["phone"], (0, 0, 0, frames))
    out["pitch"] = F.pad(batch["pitch"], (0, frames))
    out["pitchf"] = F.pad(batch["pitchf"], (0, frames))
    out["wave"] = F.pad(batch["wave"], (0, frames * hop))
    return out


class _PositionalNoise:
    """`torch` for rvc.models.encoders, whose `randn_like` gives each (item, channel, frame) the
    same value whatever the tensor's length: the posterior's noise is then no difference between
    a padded and an unpadded run, and what remains is the padding's own effect."""

    def __init__(self) -> None:
        self._noise = torch.randn(1, 64, 512, generator=torch.Generator().manual_seed(7))

    def randn_like(self, t: torch.Tensor) -> torch.Tensor:
        b, c, n = t.shape
        return self._noise[:, :c, :n].expand(b, c, n).to(t)

    def __getattr__(self, name: str):
        return getattr(torch, name)


def _g_losses(gan, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)  # the same crop start and NSF noise in both runs (same shapes)
    with torch.no_grad(), frozen(gan.discriminator):
        out, real = gan.generate(batch)
        return {k: v.detach() for k, v in gan.g_losses(out, real).items()}


@pytest.mark.parametrize("vocoder", ["hifigan", "mrf_hifigan"])
def test_losses_with_d_frozen_do_not_change_with_padding(tmp_path, monkeypatch, vocoder):
    cfg = train_cfg(tmp_path, f"vocoder={vocoder}")
    hop = cfg.model.hop_length
    monkeypatch.setattr(encoders, "torch", _PositionalNoise())
    torch.manual_seed(0)
    gan = build_gan(cfg).eval()  # eval: no dropout draws whose count follows the length
    alone = batch_for(cfg, b=1, frames=43)
    assert int(alone["phone_lengths"][0]) == 43  # no padding at all: its own length
    ref = _g_losses(gan, alone)
    got = _g_losses(gan, _padded(alone, PAD_FRAMES, hop))
    for name in ("g/mel", "g/kl", "g/fm", "g/adv", "g/loss"):
        torch.testing.assert_close(got[name], ref[name], rtol=1e-4, atol=1e-6, msg=name)
