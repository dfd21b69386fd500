"""Multi-scale log-mel L1 loss, the mel term Applio uses when training RefineGAN.

Seven STFT scales (Hann window = n_fft, hop = window / 4, centred) with 5 … 320 Slaney mel bands
over 0 … sr/2; each scale adds the mean |log10 mel(real) − log10 mel(fake)|. The scales are
summed, not averaged; the trainer applies the `c_mel / 3` weight.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from rvc.audio.mel import mel_basis

DEFAULT_N_MELS: tuple[int, ...] = (5, 10, 20, 40, 80, 160, 320)
DEFAULT_WINDOW_LENGTHS: tuple[int, ...] = (32, 64, 128, 256, 512, 1024, 2048)


class MultiScaleMelLoss(nn.Module):
    """Sum over scales of the L1 distance between log10 mel spectrograms of two waveforms."""

    def __init__(
        self,
        sample_rate: int,
        n_mels: tuple[int, ...] | list[int] = DEFAULT_N_MELS,
        window_lengths: tuple[int, ...] | list[int] = DEFAULT_WINDOW_LENGTHS,
        clamp_min: float = 1e-5,
    ) -> None:
        super().__init__()
        if len(n_mels) != len(window_lengths) or not n_mels:
            raise ValueError(
                f"n_mels {list(n_mels)} and window_lengths {list(window_lengths)} must pair up"
            )
        self.sample_rate = int(sample_rate)
        self.scales = [(int(m), int(w)) for m, w in zip(n_mels, window_lengths, strict=True)]
        self.log_clamp = clamp_min
        # derived from the settings, so kept out of checkpoints (persistent=False)
        for i, (m, w) in enumerate(self.scales):
            self.register_buffer(f"window_{i}", torch.hann_window(w), persistent=False)
            # librosa's Slaney filters over 0 … sr/2, as Applio; cloned out of the shared cache
            bank = mel_basis(self.sample_rate, w, m).clone()  # [n_mels, w // 2 + 1]
            self.register_buffer(f"mel_{i}", bank, persistent=False)

    def log_mel(self, wav: torch.Tensor, i: int) -> torch.Tensor:
        """wav [B, T] (fp32) -> log10 mel of scale i [B, n_mels, frames]."""
        # .float(): buffers follow module.half(), but the STFT here always runs in fp32
        window = getattr(self, f"window_{i}").float()
        bank = getattr(self, f"mel_{i}").float()
        w = window.numel()
        spec = torch.stft(wav, n_fft=w, hop_length=w // 4, window=window, return_complex=True)
        # the 1e-6 keeps sqrt differentiable at exact zeros
        mag = torch.sqrt(spec.real.pow(2) + spec.imag.pow(2) + 1e-6)  # [B, F, frames]
        mel = torch.matmul(bank, mag)  # [B, n_mels, frames]
        return torch.log(mel.clamp(min=self.log_clamp)) / math.log(10.0)

    def forward(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """real, fake [B, 1, T] or [B, T] -> scalar loss (unweighted)."""
        if real.shape != fake.shape:
            raise ValueError(
                f"real {tuple(real.shape)} and fake {tuple(fake.shape)} differ in shape"
            )
        b = real.shape[0]
        # one STFT per scale for both signals; fp32 because half-precision FFTs are poor/unsupported
        both = torch.cat([real.reshape(b, -1), fake.reshape(b, -1)]).float()  # [2B, T]
        loss = both.new_zeros(())
        with torch.autocast(device_type=both.device.type, enabled=False):
            for i in range(len(self.scales)):
                logmel = self.log_mel(both, i)
                loss = loss + (logmel[:b] - logmel[b:]).abs().mean()
        return loss
