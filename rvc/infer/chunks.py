"""Where a long input is cut, and how each chunk is padded (the RVC WebUI's scheme).

The input (16 kHz) is reflect-padded by `pad` samples on both ends. Inputs longer than `max`
are cut near every multiple of `center`, at the quietest 10 ms window within ±`query`; the cut
is floored to the 10 ms frame grid, so every chunk starts on an F0 frame. Each chunk then runs
with `pad` samples of real context on both sides, and that context is trimmed off its output,
so chunks join end to end without overlap-add.

Chunk lengths vary with where the quiet points fall, and oneDNN keeps primitives and
workspaces per input shape: at exact lengths, memory grows with the number of chunks (RVC
WebUI issue #2774) and each new length runs cold. `padded_length` maps every chunk to one of a
few lengths fixed by the options alone, whatever the input's length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rvc.formats import ANALYSIS_HOP, ANALYSIS_RATE

SR = ANALYSIS_RATE
WINDOW = ANALYSIS_HOP  # samples per F0 frame (10 ms)
# the last (or only) chunk is padded up to rungs this ratio apart: at most 19 % extra work on
# it, and a handful of rungs cover every length a chunk can have
LADDER = 2**0.25


@dataclass(frozen=True)
class Chunk:
    """One piece of the padded input: samples [start, stop) and F0 frames [frame0, frame1)."""

    start: int
    stop: int
    frame0: int
    frame1: int

    @property
    def frames(self) -> int:
        return self.frame1 - self.frame0


def seconds(value: float) -> int:
    """Samples at 16 kHz for a length in seconds."""
    return int(round(float(value) * SR))


def cut_points(audio: np.ndarray, center: int, query: int, max_len: int) -> list[int]:
    """Cut positions (samples of `audio`, unpadded): the first quietest point within ±`query`
    of each multiple of `center`; none if the input is not longer than `max_len`."""
    n = len(audio)
    if n + WINDOW <= max_len:  # the WebUI measures its half-window-padded copy
        return []
    padded = np.pad(np.asarray(audio, dtype=np.float64), (WINDOW // 2, WINDOW // 2), mode="reflect")
    # sum of |x| over the 10 ms window starting at each sample; a cumulative sum gives exactly 0
    # in digital silence, so ties there resolve to the first sample as in the WebUI's loop
    c = np.concatenate([[0.0], np.cumsum(np.abs(padded))])
    level = c[WINDOW : WINDOW + n] - c[:n]
    cuts = []
    for t in range(center, n, center):
        lo = max(t - query, 0)
        seg = level[lo : t + query]
        cuts.append(lo + int(np.argmin(seg)))
    return cuts


def plan(
    n_samples: int, pad: int, center: int, query: int, max_len: int, audio: np.ndarray
) -> list[Chunk]:
    """The chunks of an input of `n_samples` once padded by `pad` on both ends."""
    total = n_samples + 2 * pad
    last_frame = total // WINDOW
    chunks, s = [], 0
    for t in cut_points(audio, center, query, max_len):
        t = t // WINDOW * WINDOW
        chunks.append(Chunk(s, t + 2 * pad + WINDOW, s // WINDOW, (t + 2 * pad) // WINDOW))
        s = t
    chunks.append(Chunk(s, total, s // WINDOW, last_frame))
    return chunks


def f0_span(chunk: Chunk, total: int, context: int) -> tuple[int, int]:
    """Samples to run an F0 estimator on for a chunk: its frames plus `context` each side,
    on the 10 ms grid of the padded input (so frame i of the span is global frame
    `start // WINDOW + i`)."""
    start = max(0, chunk.frame0 * WINDOW - context)
    stop = min(total, chunk.frame1 * WINDOW + context)
    return start, stop


def _frame_ceil(n: float) -> int:
    return math.ceil(n / WINDOW) * WINDOW


def longest_chunk(pad: int, center: int, query: int) -> int:
    """The longest a chunk other than the last can be (samples): two cuts at most
    `center + 2·query` apart, each floored to the frame grid, plus the context and the
    frame `plan` adds."""
    return _frame_ceil(center + 2 * query + 2 * pad + 2 * WINDOW)


def padded_length(n: int, longest: int, last: bool) -> int:
    """The length a chunk of `n` samples is padded to: `longest` for every chunk but the
    last; for the last (or only) one, the smallest rung `longest · LADDER^k` (k any integer,
    on the frame grid) that holds it."""
    if not last:
        if n > longest:
            raise ValueError(f"chunk of {n} samples is longer than the longest, {longest}")
        return longest
    k = math.ceil(math.log(n / longest) / math.log(LADDER))
    while (rung := _frame_ceil(longest * LADDER**k)) < n:  # float rounding at a rung's edge
        k += 1
    return rung
