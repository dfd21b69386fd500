"""Multi-scale log-mel L1 loss (RefineGAN's mel term)."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import torch

from rvc.losses.multiscale_mel import MultiScaleMelLoss


@pytest.fixture(scope="module")
def loss_fn() -> MultiScaleMelLoss:
    return MultiScaleMelLoss(40000)


def tone(t: int = 6000, sr: int = 40000, f: float = 220.0) -> torch.Tensor:
    n = torch.arange(t) / sr
    y = 0.3 * torch.sin(2 * torch.pi * f * n) + 0.1 * torch.sin(2 * torch.pi * 3.1 * f * n)
    return y.view(1, 1, -1).repeat(2, 1, 1)


def test_zero_for_identical_inputs(loss_fn: MultiScaleMelLoss) -> None:
    y = tone()
    assert loss_fn(y, y.clone()).item() == 0.0


def test_positive_and_differentiable(loss_fn: MultiScaleMelLoss) -> None:
    target = tone()
    fake = (target + 0.05 * torch.randn_like(target)).requires_grad_(True)
    loss = loss_fn(target, fake)
    assert loss.ndim == 0 and loss.item() > 0
    loss.backward()
    assert torch.isfinite(fake.grad).all() and fake.grad.abs().sum() > 0


def test_decreases_as_signal_approaches_target(loss_fn: MultiScaleMelLoss) -> None:
    torch.manual_seed(0)
    target = tone()
    start = 0.2 * torch.randn_like(target)
    losses = [loss_fn(target, a * target + (1 - a) * start).item() for a in (0, 0.5, 0.9, 0.99)]
    assert all(x > y for x, y in zip(losses, losses[1:], strict=False)), losses


def test_one_scale_matches_librosa_log_mel() -> None:
    # an independent reference: librosa magnitude mel, centred reflect-padded Hann STFT
    torch.manual_seed(1)
    real, fake = torch.randn(1, 1, 4000) * 0.2, torch.randn(1, 1, 4000) * 0.2
    loss = MultiScaleMelLoss(32000, n_mels=[40], window_lengths=[256])(real, fake).item()

    def log_mel(y: torch.Tensor) -> np.ndarray:
        mel = librosa.feature.melspectrogram(
            y=y.flatten().double().numpy(), sr=32000, n_fft=256, hop_length=64,
            n_mels=40, power=1.0, center=True, pad_mode="reflect",
        )  # fmt: skip
        return np.log10(np.maximum(mel, 1e-5))

    assert loss == pytest.approx(np.abs(log_mel(real) - log_mel(fake)).mean(), rel=1e-3)


def test_accepts_flat_batches_and_rejects_mismatch(loss_fn: MultiScaleMelLoss) -> None:
    y = tone()
    noisy = y + 0.01 * torch.randn_like(y)
    assert loss_fn(y[:, 0], noisy[:, 0]).item() == pytest.approx(loss_fn(y, noisy).item())
    with pytest.raises(ValueError, match="shape"):
        loss_fn(y, y[..., :-1])
    with pytest.raises(ValueError, match="pair"):
        MultiScaleMelLoss(40000, n_mels=[5, 10], window_lengths=[32])
