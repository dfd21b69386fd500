"""A tiny generator learns one harmonic segment: the mel L1 falls several-fold in a few steps."""

from __future__ import annotations

import math

import torch

from rvc.audio.mel import MelSpectrogram
from rvc.losses.gan import kl_loss, mel_l1
from rvc.models.synthesizer import Synthesizer
from tests.conftest import debug_config

STEPS = 80
FACTOR = 3.0  # mean loss of the last 5 steps must be ≥3× below that of the first 5


def test_tiny_generator_overfits_one_segment(one_thread):
    torch.manual_seed(0)
    frames, hop, sr = 32, 8, 16000
    # the debug model at 16 kHz with hop 8 (n_fft 64): 50× less audio per step than its 40k
    # framing, which keeps 80 steps fast; segment = the whole item, so every step sees the same
    # target
    config = debug_config(spec_channels=33, segment_size=frames, upsample_rates=[4, 2],
                          upsample_kernel_sizes=[8, 4], sr=sr)  # fmt: skip
    model = Synthesizer(*config)
    mel = MelSpectrogram(sr, n_fft=64, hop_length=hop, win_length=64, n_mels=12)
    t = torch.arange(frames * hop) / sr
    wave = sum(0.3 / k * torch.sin(2 * math.pi * 250.0 * k * t) for k in (1, 2, 3)).unsqueeze(0)
    spec = mel.spectrogram(wave)  # [1, 33, frames]
    target = mel.spec_to_mel(spec)
    phone = torch.randn(1, frames, 768)
    lengths = torch.tensor([frames])
    pitch = torch.full((1, frames), 100)
    pitchf = torch.full((1, frames), 250.0)
    sid = torch.tensor([0])
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.8, 0.99))
    losses = []
    for _ in range(STEPS):
        out = model(phone, lengths, pitch, pitchf, spec, lengths, sid)
        loss_mel = mel_l1(target, mel(out.wav))
        loss = loss_mel + 0.02 * kl_loss(*out.kl_stats())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss_mel.item())
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert all(math.isfinite(v) for v in losses)
    assert last * FACTOR <= first, f"mel L1 {first:.3f} -> {last:.3f}"
