"""A weight-free content feature for offline demos and tests: projected log-mel frames.

OFFLINE / DEMO BASELINE ONLY. Log-mel spectra carry the speaker's timbre and pitch harmonics,
so this feature disentangles content from speaker far worse than HuBERT/ContentVec: a voice
model trained on it converts poorly. Use it when no embedder weights can be had (CI, air-gapped
machines, the synthetic demo), never for a real voice model.
"""

from __future__ import annotations

import torch

from rvc.embedders.base import Embedder, conv_frames
from rvc.embedders.hubert import version_dim
from rvc.formats import ANALYSIS_RATE

SAMPLE_RATE = ANALYSIS_RATE
WIN = 400  # 25 ms: the receptive field of HuBERT's conv encoder ...
HOP = 320  # ... and its 20 ms stride, so both give the same frames for the same input
N_FFT = 512


def _mel_filterbank(n_mels: int, f_min: float, f_max: float) -> torch.Tensor:
    """Slaney-style triangular mel filters, [N_FFT // 2 + 1, n_mels]."""
    import librosa

    fb = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=n_mels, fmin=f_min, fmax=f_max)
    return torch.from_numpy(fb.T.copy()).float()


def _orthogonal_projection(n_in: int, dim: int, seed: int) -> torch.Tensor:
    """A fixed [n_in, dim] matrix with orthonormal rows, the same on every machine for `seed`."""
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(max(n_in, dim), min(n_in, dim), generator=gen, dtype=torch.float64)
    q, r = torch.linalg.qr(a)  # [max, min], orthonormal columns
    q = q * torch.sign(torch.diagonal(r))[None]  # fix QR's sign freedom: unique answer
    proj = q.T if n_in <= dim else q  # [n_in, dim]
    return proj.float()


class SpectralEmbedder(Embedder):
    """Log-mel (cepstral-mean-normalised) frames at HuBERT's 20 ms rate, projected to `dim`.

    Deterministic and weight-free: the projection is a seeded random orthogonal matrix (768-dim
    for v2, 256 for v1). Offline/demo baseline with weak speaker disentanglement (see module doc).
    `padding_mask` is [B, T16k] bool, True at padded samples (right padding).
    """

    def __init__(
        self,
        name: str = "spectral",
        version: str = "v2",
        dim: int | None = None,
        n_mels: int = 80,
        f_min: float = 40.0,
        f_max: float = 7600.0,
        seed: int = 0,
        device: str | torch.device = "cpu",
    ):
        super().__init__()
        self.name = name
        self.version = version
        self.dim = version_dim(version)
        if dim is not None and int(dim) != self.dim:
            raise ValueError(
                f"embedder '{name}': {version} features are {self.dim}-dim, but dim={dim} was set"
            )
        from rvc.utils.device import resolve_device

        dev = resolve_device(device)
        self.register_buffer(
            "window", torch.hann_window(WIN, periodic=False, device=dev), persistent=False
        )
        self.register_buffer(
            "mel_fb", _mel_filterbank(n_mels, f_min, f_max).to(dev), persistent=False
        )
        self.register_buffer(
            "proj", _orthogonal_projection(n_mels, self.dim, seed).to(dev), persistent=False
        )

    def extra_repr(self) -> str:
        return f"name={self.name!r}, version={self.version}, dim={self.dim}"

    @torch.inference_mode()
    def forward(
        self, audio: torch.Tensor, padding_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """[B, T16k] audio (+ [B, T16k] bool padding mask) → [B, frames, dim] features."""
        lengths = self.check_input(audio, padding_mask)
        audio = audio.to(device=self.proj.device, dtype=torch.float32)
        b, t = audio.shape
        out = audio.new_zeros(b, conv_frames(t), self.dim)  # [B, F, dim]
        for i, n in enumerate(lengths.tolist()):
            if conv_frames(n) > 0:
                out[i, : conv_frames(n)] = self._clip(audio[i, :n]).to(out.dtype)
        return out

    def _clip(self, audio: torch.Tensor) -> torch.Tensor:
        """One unpadded clip [T] → [frames, dim].

        Clip by clip in float64: a clip's features do not depend on what it was batched with,
        to the last bit once rounded to float32 (sharded and single runs write equal files).
        """
        x = audio.double().unfold(-1, WIN, HOP) * self.window.double()  # [F, WIN]
        power = torch.fft.rfft(x, n=N_FFT).abs() ** 2  # [F, N_FFT // 2 + 1]
        logmel = torch.log(power @ self.mel_fb.double() + 1e-6)  # [F, n_mels]
        # cepstral mean normalisation: removes the channel and some of the speaker's average
        # spectral tilt (content lives in how the spectrum moves, not in its long-term shape)
        logmel = logmel - logmel.mean(0, keepdim=True)
        return logmel @ self.proj.double()  # [F, dim]
