"""Neural-source-filter excitation: a sine (plus harmonics) source driven by frame-rate F0.

Shared by the NSF HiFi-GAN (harmonic_num 0) and the MRF HiFi-GAN (harmonic_num 8). Math as
Applio's NSF generator: phase is the running sum of f0 / sr over the nearest-upsampled F0,
accumulated per frame modulo 1 so float32 keeps its precision on long inputs; unvoiced
samples (f0 <= threshold) get only noise of std sine_amp / 3. Noise and the harmonics' random
start phases come from the global RNG, so outputs repeat under `torch.manual_seed`. The start
phases are one set per batch for the NSF HiFi-GAN and one set per item for the MRF HiFi-GAN
(`per_item_phase`), as each of Applio's generators draws them: same RNG draws, same outputs.
`SineSource` (settings + noise mix) is also the base of RefineGAN's sample-rate source.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
from torch import nn


class SineSource(nn.Module):
    """Settings and voiced/unvoiced noise mix shared by the sine sources (NSF and RefineGAN)."""

    def __init__(
        self,
        sample_rate: int,
        harmonic_num: int = 0,
        sine_amp: float = 0.1,
        noise_std: float = 0.003,
        voiced_threshold: float = 0.0,
        per_item_phase: bool = False,
    ) -> None:
        super().__init__()
        self.per_item_phase = per_item_phase
        self.sample_rate = int(sample_rate)
        self.harmonic_num = int(harmonic_num)
        self.dim = self.harmonic_num + 1
        self.sine_amp = sine_amp
        self.noise_std = noise_std
        self.voiced_threshold = voiced_threshold
        # live conversion (rvc.infer.streaming): the fundamental's phase in cycles at the first
        # sample, a 0-d tensor filled in place per block (no recompile under torch.compile);
        # harmonic k then starts at k·phase0, so blocks join phase-continuously. None offline:
        # the fundamental starts at 0 and the overtones at random
        self.phase0: torch.Tensor | None = None
        # with phase0: the overtones' start phases on top of k·phase0 ([B or 1, 1, dim], drawn
        # once per call by rvc.models.segments so that every piece of it shares them)
        self.overtones: torch.Tensor | None = None

    def start_phases(self, harmonics: torch.Tensor, batch: int) -> torch.Tensor:
        """Start phase (cycles) per harmonic [B or 1, 1, dim] (`harmonics` [dim] = 1..dim)."""
        if self.phase0 is not None:
            start = (self.phase0.to(harmonics) * harmonics).view(1, 1, -1)
            return start if self.overtones is None else start + self.overtones.to(start)
        # random start phase for the overtones only; the fundamental starts at 0
        # rand(B, 1, dim) draws what Applio's MRF rand(B, dim) draws
        start = torch.rand(
            batch if self.per_item_phase else 1, 1, self.dim, device=harmonics.device
        )
        return start * (harmonics.view(1, 1, -1) > 1)

    def add_noise(self, sines: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
        """sines [B, N, H], uv [B, N, 1] in {0, 1} -> voiced sines + weak noise, or noise only."""
        noise_amp = uv * self.noise_std + (1 - uv) * (self.sine_amp / 3)
        return sines * uv + noise_amp * torch.randn_like(sines)


def cycles(f0: torch.Tensor | object) -> torch.Tensor | object:
    """Turns of the fundamental over 10 ms frames of `f0` Hz (f0 · hop / sr, hop = sr / 100):
    what the sine sources add up frame by frame."""
    return f0 / 100


def sine_sources(dec: nn.Module) -> list[SineSource]:
    return [m for m in dec.modules() if isinstance(m, SineSource)]


@contextlib.contextmanager
def continued_phase(
    sources: list[SineSource], phase0: torch.Tensor, overtones: list | None = None
) -> Iterator[None]:
    """For the calls inside: the sources start at `phase0` (cycles; overtones as given, else
    at k·phase0) instead of 0 and random; afterwards the offline behaviour again."""
    for i, m in enumerate(sources):
        m.phase0, m.overtones = phase0, None if overtones is None else overtones[i]
    try:
        yield
    finally:
        for m in sources:
            m.phase0 = m.overtones = None


class SineGen(SineSource):
    """F0 [B, T] Hz at frame rate -> sine source [B, T·upp, harmonic_num + 1] and uv [B, T·upp, 1]."""

    @torch.no_grad()
    def forward(self, f0: torch.Tensor, upp: int) -> tuple[torch.Tensor, torch.Tensor]:
        """f0 [B, T] Hz, upp samples per frame -> (sine_waves [B, T·upp, dim], uv [B, T·upp, 1])."""
        b, t = f0.shape
        f0 = f0.float().unsqueeze(-1)  # [B, T, 1]; phase needs float32 even under autocast
        device = f0.device
        steps = torch.arange(1, upp + 1, device=device, dtype=f0.dtype)  # [upp]
        phase = f0 / self.sample_rate * steps  # [B, T, upp] phase within each frame
        # phase carried into each frame = sum of the previous frames' last phases, modulo 1
        carry = torch.fmod(phase[:, :-1, -1:] + 0.5, 1.0) - 0.5  # [B, T-1, 1]
        carry = carry.cumsum(dim=1).fmod(1.0)
        phase = phase + torch.nn.functional.pad(carry, (0, 0, 1, 0))
        phase = phase.reshape(b, t * upp, 1)
        harmonics = torch.arange(1, self.dim + 1, device=device, dtype=f0.dtype)  # [dim]
        phase = phase * harmonics.view(1, 1, -1)  # [B, T·upp, dim]
        start = self.start_phases(harmonics, b)
        sine_waves = torch.sin(2 * math.pi * (phase + start)) * self.sine_amp

        uv = (f0 > self.voiced_threshold).float()  # [B, T, 1]
        uv = uv.repeat_interleave(upp, dim=1)  # [B, T·upp, 1]
        return self.add_noise(sine_waves, uv), uv


class SourceModuleHnNSF(nn.Module):
    """Harmonic-plus-noise source merged to one channel: F0 [B, T] -> excitation [B, 1, T·upp]."""

    def __init__(
        self,
        sample_rate: int,
        harmonic_num: int = 0,
        sine_amp: float = 0.1,
        add_noise_std: float = 0.003,
        voiced_threshold: float = 0.0,
        per_item_phase: bool = False,
    ) -> None:
        super().__init__()
        self.l_sin_gen = SineGen(
            sample_rate, harmonic_num, sine_amp, add_noise_std, voiced_threshold, per_item_phase
        )
        self.l_linear = nn.Linear(harmonic_num + 1, 1)

    def forward(self, f0: torch.Tensor, upp: int) -> torch.Tensor:
        """f0 [B, T] Hz -> [B, 1, T·upp]."""
        sine_waves, _ = self.l_sin_gen(f0, upp)
        merged = torch.tanh(self.l_linear(sine_waves.to(self.l_linear.weight.dtype)))
        return merged.transpose(1, 2)
