"""Linear and log-mel spectrograms exactly as RVC computes them, in pure torch.

RVC pads both sides by (n_fft - hop) / 2 with reflection and runs the STFT with
`center=False`, so a signal of N·hop samples gives exactly N frames. The magnitude carries a
1e-6 floor inside the square root and mels are `log(clamp(mel, 1e-5))` over librosa's Slaney
filter bank. Windows and filter banks are cached per (size, device, dtype).
"""

from __future__ import annotations

import torch
from torch import nn

_WINDOWS: dict[tuple, torch.Tensor] = {}
_MEL_BASES: dict[tuple, torch.Tensor] = {}


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    # half-precision FFTs are limited (power-of-two sizes on CUDA, none on CPU): use float32
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def hann_window(win_length: int, device: torch.device | str, dtype: torch.dtype) -> torch.Tensor:
    """A cached periodic Hann window [win_length]."""
    key = (win_length, str(device), dtype)
    window = _WINDOWS.get(key)
    if window is None:
        window = torch.hann_window(win_length, device=device, dtype=dtype)
        _WINDOWS[key] = window
    return window


def mel_basis(
    sample_rate: int,
    n_fft: int,
    n_mels: int,
    fmin: float = 0.0,
    fmax: float | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """A cached librosa (Slaney) mel filter bank [n_mels, n_fft // 2 + 1]."""
    key = (sample_rate, n_fft, n_mels, float(fmin), fmax, str(device), dtype)
    basis = _MEL_BASES.get(key)
    if basis is None:
        from librosa.filters import mel as librosa_mel  # imported lazily: librosa loads numba

        fb = librosa_mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
        basis = torch.from_numpy(fb).to(device=device, dtype=dtype)
        _MEL_BASES[key] = basis
    return basis


def _reflect_pad_each(y: torch.Tensor, lengths: torch.Tensor, pad: int) -> torch.Tensor:
    """y [B, T] reflect-padded by `pad` at both ends of each item's own length [B] -> [B, T + 2·pad].

    What `F.pad(mode="reflect")` does to a lone clip, for every item of a zero-padded batch at
    once: one gather with index arithmetic, no Python loop and no host read. Positions past an
    item's reflected end read clamped garbage; the caller zeroes those frames.
    """
    k = torch.arange(-pad, y.size(-1) + pad, device=y.device)[None]  # [1, T + 2·pad]
    last = (lengths.to(k.device) - 1)[:, None]  # [B, 1]
    idx = torch.where(k < 0, -k, torch.where(k > last, 2 * last - k, k))
    return torch.gather(y, 1, idx.clamp(0, y.size(-1) - 1))


def spectrogram(
    y: torch.Tensor,
    n_fft: int,
    hop_length: int,
    win_length: int,
    lengths: torch.Tensor | None = None,
) -> torch.Tensor:
    """Linear magnitude spectrogram of y [B, T] or [B, 1, T] -> [B, n_fft // 2 + 1, frames].

    With `lengths` [B] (valid samples, multiples of the hop) each item is transformed over its
    own length, as RVC/Applio do per clip before padding: its frames do not depend on its
    batch-mates or on the padding, and frames past its end are 0 (as Applio's collate pads).
    """
    if y.dim() == 3:
        y = y.squeeze(1)
    if y.dim() == 1:
        y = y.unsqueeze(0)
    y = y.to(_compute_dtype(y.dtype))
    pad = (n_fft - hop_length) // 2
    if lengths is None:
        y = torch.nn.functional.pad(y.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
    else:
        y = _reflect_pad_each(y, lengths, pad)
    spec = torch.stft(
        y,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=hann_window(win_length, y.device, y.dtype),
        center=False,
        normalized=False,
        onesided=True,
        return_complex=True,
    )
    # the 1e-6 floor keeps the gradient of sqrt finite at silent bins (RVC's choice)
    mag = torch.sqrt(spec.real.pow(2) + spec.imag.pow(2) + 1e-6)  # [B, F, frames]
    if lengths is not None:
        frames = torch.arange(mag.size(-1), device=mag.device)
        valid = frames[None] < (lengths.to(mag.device) // hop_length)[:, None]  # [B, frames]
        mag = torch.where(valid[:, None], mag, 0.0)
    return mag


def spec_to_mel(
    spec: torch.Tensor,
    sample_rate: int,
    n_fft: int,
    n_mels: int,
    fmin: float = 0.0,
    fmax: float | None = None,
) -> torch.Tensor:
    """Log-mel [B, n_mels, frames] from a linear magnitude spectrogram [B, F, frames]."""
    spec = spec.to(_compute_dtype(spec.dtype))
    basis = mel_basis(sample_rate, n_fft, n_mels, fmin, fmax, spec.device, spec.dtype)
    return torch.log(torch.matmul(basis, spec).clamp(min=1e-5))


class MelSpectrogram(nn.Module):
    """RVC's spectrogram settings bundled as a module (no parameters, cached buffers)."""

    def __init__(
        self,
        sample_rate: int,
        n_fft: int,
        hop_length: int,
        win_length: int | None = None,
        n_mels: int = 80,
        fmin: float = 0.0,
        fmax: float | None = None,
    ) -> None:
        super().__init__()
        self.sample_rate = int(sample_rate)
        self.n_fft = int(n_fft)
        self.hop_length = int(hop_length)
        self.win_length = int(win_length or n_fft)
        self.n_mels = int(n_mels)
        self.fmin = float(fmin)
        self.fmax = None if fmax is None else float(fmax)

    def spectrogram(self, y: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Linear magnitude [B, n_fft // 2 + 1, frames] of y [B, T] or [B, 1, T]; with
        `lengths` [B] (samples) each item over its own length (see `spectrogram`)."""
        return spectrogram(y, self.n_fft, self.hop_length, self.win_length, lengths)

    def spec_to_mel(self, spec: torch.Tensor) -> torch.Tensor:
        """Log-mel [B, n_mels, frames] of a linear magnitude spectrogram."""
        return spec_to_mel(spec, self.sample_rate, self.n_fft, self.n_mels, self.fmin, self.fmax)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """Log-mel [B, n_mels, frames] of y [B, T] or [B, 1, T]."""
        return self.spec_to_mel(self.spectrogram(y))

    def extra_repr(self) -> str:
        return (
            f"sample_rate={self.sample_rate}, n_fft={self.n_fft}, hop={self.hop_length}, "
            f"win={self.win_length}, n_mels={self.n_mels}, fmin={self.fmin}, fmax={self.fmax}"
        )
