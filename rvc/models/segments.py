"""The vocoder over a long input in fixed-size pieces: same audio, cache-sized activations.

A HiFi-GAN's activations at the sample rate outgrow the CPU's caches on long inputs: the 40k
vocoder runs at RTF 0.56-0.61 on up to 4 s in fp32 and at 1.00 on 13 s (bf16: 0.24 and 0.36;
2-core AMD EPYC, docs/benchmarks.md). Its convolutions see a few frames either side, and its
NSF source's phase is a running sum of F0, so pieces of `segment` frames with `context`
frames either side, each starting the sine where the whole would be (`SineSource.phase0`,
overtone starts drawn once per call), give the whole call's audio. Every piece has one shape
(the last one slides back to fit), so oneDNN builds one set of kernels.
"""

from __future__ import annotations

import torch

from rvc.models.nsf import SineGen, continued_phase, cycles, sine_sources

SEGMENT = 400  # frames vocoded per piece (4 s): where the RTF is still flat
CONTEXT = 24  # frames either side: more than the HiFi-GAN / MRF receptive field (~±11)


def segmentable(dec: torch.nn.Module) -> bool:
    """Pieces give the whole's audio: a frame-rate sine source (HiFi-GAN NSF, MRF) or none.
    RefineGAN's source runs on linearly interpolated F0 and its U-Net sees further: whole."""
    return hasattr(dec, "upp") and all(isinstance(m, SineGen) for m in sine_sources(dec))


def vocode(
    dec: torch.nn.Module,
    z: torch.Tensor,
    f0: torch.Tensor | None,
    g: torch.Tensor,
    frames: int,
    segment: int = SEGMENT,
    context: int = CONTEXT,
) -> torch.Tensor:
    """`dec(z, f0, g)` for the first `frames` frames of z [1, C, T] (f0 [1, T] Hz or None):
    wav [1, 1, ≥ frames · hop], in pieces when longer than one piece and its context."""
    width = segment + 2 * context
    if z.size(0) != 1 or frames <= width or not segmentable(dec):
        return dec(z, f0, g=g)
    hop = dec.upp
    sources = [m for m in sine_sources(dec) if isinstance(m, SineGen)]
    overtones, turns = None, None
    if sources and f0 is not None:  # overtones' random starts: one draw, as the whole call's
        harmonics = torch.arange(1, sources[0].dim + 1, device=z.device, dtype=torch.float32)
        overtones = [m.start_phases(harmonics, 1) for m in sources]
        # cycles by the end of each frame, in float64 on long inputs
        turns = (cycles(f0[0].double()).cumsum(0) % 1.0).float()
    pieces = []
    for s in range(0, frames, segment):
        lo = min(max(0, s - context), frames - width)
        start = turns[lo - 1] if turns is not None and lo > 0 else torch.zeros((), device=z.device)
        with continued_phase(sources, start, overtones):
            y = dec(z[:, :, lo : lo + width], None if f0 is None else f0[:, lo : lo + width], g=g)
        n = min(segment, frames - s)
        pieces.append(y[..., (s - lo) * hop : (s - lo + n) * hop])
    return torch.cat(pieces, dim=-1)
