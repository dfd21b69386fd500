"""Live conversion: blocks in, blocks out, through the offline path's own objects.

`StreamingConverter` wraps a `VoiceConverter` (the same F0 estimator, embedder, index and
synthesizer, cast and folded once) and follows the RVC WebUI's realtime scheme
(`tools/rvc_for_realtime.py`, `gui_v1.py`). All lengths are whole 10 ms frames at 16 kHz. Per
block it keeps a fixed window of the input:

    | extra (left context) | crossfade | SOLA search | block |   ← newest input on the right

- the embedder sees the vocoded part and `embed_context_s` (1 s) before it; older frames'
  features come from a cache, as computed when they were new (the embedder's attention would
  change them a little given more context: the WebUI recomputes the whole window instead;
  `embed_context_s ≥ extra_s` does the same here), and so do their index neighbours;
- the F0 estimator sees only the block, the last block's 3 newest frames (estimated then
  without right context) and `f0_context_s` before those; older frames come from a cache
  of raw Hz (pitch, autotune and smoothing are applied afresh to the cache each block,
  so a new `pitch` takes effect at the next block). A frame's F0 is computed when it is
  newest, with the context it had then: RVC caches F0 the same way;
- the text encoder sees the whole window; the flow (convolutional) and the vocoder, most of
  the cost, run only on crossfade + search + block (+ their own receptive fields);
- the new audio's start is aligned to the previous block's tail by SOLA (the offset within
  the search range that best correlates with it), then crossfaded over `crossfade_s`.

Every network sees one input shape for the life of the stream: oneDNN primitives (and
`device.compile` graphs) are built on the first block, never again.

Latency: a sample pushed leaves in the output `crossfade + search − offset` later
(offset ∈ [0, search] from SOLA); a device adds the block's own buffering on top, so the
algorithmic latency is block + crossfade + search (what `latency_s` reports; the WebUI's
`delay_time` is the same sum).

A formant shift runs on the input blocks first (the offline path's shifter: +50 ms latency);
effects on the output blocks, their state kept across blocks (reverb tails, echoes).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from rvc.f0 import edit
from rvc.index.search import blend, retrieve
from rvc.infer import chunks as ck
from rvc.infer.blocks import (
    CausalHighpass,
    StreamEffects,
    fade_in,
    rms_mix_block,
    sola_offset,
    to_frames,
)
from rvc.infer.converter import PEAK, SILENCE, VoiceConverter, protect_unvoiced
from rvc.infer.options import ConvertOptions
from rvc.models.nsf import continued_phase, cycles, sine_sources

log = logging.getLogger(__name__)
F0_REDO = 3  # newest F0 frames of a block estimated again at the next (no right context before)
DECODE_CONTEXT = 8  # frames the vocoder sees left of the new audio (its receptive field ~ ±4)
MIN_BLOCK_S, MAX_BLOCK_S = 0.01, 1.5


def frames_of(seconds: float) -> int:
    """Whole 10 ms frames in `seconds` (rounded, as the WebUI rounds to its zc grid)."""
    return int(round(float(seconds) * 100))


@dataclass(frozen=True)
class StreamOptions:
    """The live knobs, with RVC's realtime meanings (gui_v1.py) and defaults."""

    block_s: float = 0.25  # audio per push; 10 ms .. 1.5 s
    crossfade_s: float = 0.05  # overlap faded between blocks (RVC: crossfade_length)
    extra_s: float = 2.5  # left context for the embedder and text encoder (RVC: extra_time)
    sola_search_s: float = 0.01  # how far the seam may move to line up with the last block
    f0_context_s: float = 0.03  # F0 left context before the re-estimated frames (RVC: 30 ms)
    # audio before the vocoded part the embedder sees; older frames come from the cache (≥
    # extra_s: the whole window every block, as the WebUI; tests/infer/test_streaming.py
    # bounds what the cache changes)
    embed_context_s: float = 1.0
    threshold_db: float = -60.0  # 10 ms input frames quieter than this (RMS dBFS) are muted
    # on a GPU: the vocoder's fixed-shape call captured as a CUDA graph (torch.compile's
    # "reduce-overhead"), one replay per block instead of hundreds of kernel launches
    cuda_graphs: bool = False

    def __post_init__(self) -> None:
        if not MIN_BLOCK_S <= self.block_s <= MAX_BLOCK_S:
            raise ValueError(
                f"block_s must be in [{MIN_BLOCK_S}, {MAX_BLOCK_S}] s, got {self.block_s}"
            )
        if frames_of(self.crossfade_s) < 1:
            raise ValueError(f"crossfade_s must be ≥ 0.01 s, got {self.crossfade_s}")
        for name in ("extra_s", "sola_search_s", "f0_context_s", "embed_context_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be ≥ 0, got {getattr(self, name)}")
        if frames_of(self.crossfade_s) > frames_of(self.block_s):
            # the crossfade is taken from after the block: it cannot outlast it
            raise ValueError(
                f"crossfade_s ({self.crossfade_s}) must not be longer than block_s ({self.block_s})"
            )


@dataclass
class StreamStats:
    """What a stream did: per-block compute time, underruns, bad and silent blocks."""

    block_s: float
    compute_s: list[float] = field(default_factory=list)
    underruns: int = 0  # blocks whose compute took longer than the block lasts
    bad_blocks: int = 0  # blocks with NaN/Inf samples, replaced by silence
    silent_blocks: int = 0  # blocks converted to silence without running the networks

    def summary(self) -> dict[str, float]:
        t = np.asarray(self.compute_s) if self.compute_s else np.zeros(1)
        return {
            "blocks": len(self.compute_s),
            "block_s": self.block_s,
            "compute_median_s": float(np.median(t)),
            "compute_p95_s": float(np.percentile(t, 95)),
            "compute_max_s": float(t.max()),
            "margin": float(np.median(t) / self.block_s),  # < 1: faster than real time
            "underruns": self.underruns,
            "bad_blocks": self.bad_blocks,
            "silent_blocks": self.silent_blocks,
        }


class StreamingConverter:
    """`push(block) -> block` live conversion on a `VoiceConverter` (see the module's doc).

    Input is mono float at 16 kHz; output at the model's rate. A push of any length is
    buffered: every whole block in the buffer is converted and returned, so pushing exactly
    `block_samples` gives exactly one output block per push.
    """

    def __init__(
        self,
        converter: VoiceConverter,
        options: ConvertOptions | None = None,
        stream: StreamOptions | None = None,
    ):
        self.conv = converter
        self.options = options or ConvertOptions()
        self.stream = stream or StreamOptions()
        s = self.stream
        self.b, self.x = frames_of(s.block_s), frames_of(s.crossfade_s)
        self.s, self.e = frames_of(s.sola_search_s), frames_of(s.extra_s)
        # F0 context: the last block's F0_REDO newest frames, re-estimated, and `f0_context_s`
        # before them (their left edge), grown to a span the estimator pads nothing to (RMVPE:
        # 32k − 1 mel frames; 0.25 s blocks: 31 frames, as RVC's realtime sizes it)
        self.redo = min(F0_REDO, self.x + self.s + self.e)
        c = self.redo + frames_of(s.f0_context_s)
        if converter.f0 is not None:
            c = converter.f0.snug_length((self.b + c) * ck.WINDOW) // ck.WINDOW - self.b
        self.frames = self.e + self.x + self.s + self.b  # window, 10 ms frames
        self.c = min(c, self.frames - self.b)
        self.decoded = self.x + self.s + self.b  # frames vocoded per block
        self.margin = min(DECODE_CONTEXT, self.e)
        self.fresh = self.decoded + self.margin  # frames whose features are new each block
        # frames the embedder sees: the fresh ones and `embed_context_s` before them
        self.embedded = min(self.frames, self.fresh + frames_of(s.embed_context_s))
        self.hop = converter.hop  # output samples per frame
        self.block_samples = self.b * ck.WINDOW
        self.fade = fade_in(self.x * self.hop)
        self._fx = StreamEffects(self.options, self.sample_rate)
        self.reset()
        self._sources = sine_sources(converter.voice.synthesizer.dec)
        self._phase0 = torch.zeros((), device=converter.device)  # filled in place per block
        if s.cuda_graphs:
            if converter.device.type != "cuda":
                raise ValueError(
                    f"stream.cuda_graphs needs a CUDA device, not {converter.device} (device=gpu)"
                )
            converter.voice.synthesizer.dec.compile(mode="reduce-overhead")

    def reset(self) -> None:
        """Start a new stream: silence before it, no F0 history, fresh statistics."""
        self.window = np.zeros(self.frames * ck.WINDOW, dtype=np.float32)
        self.f0_raw = np.zeros(self.frames)  # Hz per window frame, as estimated (unedited)
        self.f0_used = np.zeros(self.frames)  # the edited F0 the last block vocoded with
        self.phase = 0.0  # the NSF fundamental's phase (cycles) at the window's first frame
        self.tail = np.zeros(self.x * self.hop, dtype=np.float32)  # last block's SOLA buffer
        self.own: np.ndarray | None = None  # embedder features per window frame [frames, dim]
        self.retrieved: np.ndarray | None = None  # their index neighbours (no index: None)
        self._quiet_own = self._quiet_ret = None  # a frame of silence: features, neighbours
        self.pending = np.zeros(0, dtype=np.float32)
        self.stats = StreamStats(block_s=self.b / 100)
        self._highpass = CausalHighpass()
        self._fx.reset()

    def warmup(self) -> float:
        """Run every network once at the stream's shapes (oneDNN builds its kernels on the
        first call: seconds), then reset; returns the seconds it took. live.py calls it before
        opening devices, so the first real block does not underrun."""
        start = time.perf_counter()
        rng = np.random.default_rng(0)
        self.window[:] = 0.1 * rng.standard_normal(len(self.window)).astype(np.float32)
        self._convert_window()
        self.reset()
        return time.perf_counter() - start

    # ---- what a caller reads ------------------------------------------------------------
    @property
    def sample_rate(self) -> int:
        return self.conv.sample_rate

    @property
    def formant_latency_s(self) -> float:
        return self._fx.frames / 100

    @property
    def latency_s(self) -> float:
        """Algorithmic latency: block + crossfade + SOLA search (+ the formant shifter's)."""
        return (self.b + self.x + self.s + self._fx.frames) / 100

    @property
    def delay_samples(self) -> int:
        """Output samples between a pushed sample and its converted self (SOLA may bring it
        up to `sola_search_s` sooner)."""
        return (self.x + self.s + self._fx.frames) * self.hop

    def output_length(self, n_in: int) -> int:
        """Output samples (model rate) that `n_in` pushed 16 kHz samples convert to."""
        return n_in * self.hop // ck.WINDOW

    def set_options(self, **changes: Any) -> None:
        """Change conversion knobs between blocks (pitch, index_rate, protect, …); validated.
        A formant shift can change live only in a stream that started with one (its latency
        is the stream's); new effects start with fresh state."""
        new = replace(self.options, **changes)
        self._fx.update(self.options, new)
        self.options = new

    # ---- the stream ---------------------------------------------------------------------
    def push(self, block: np.ndarray) -> np.ndarray:
        """Feed 16 kHz mono samples; returns the converted audio of every whole block so far."""
        block = np.asarray(block, dtype=np.float32).reshape(-1)
        if len(block) == 0:
            return np.zeros(0, dtype=np.float32)
        if not np.isfinite(block).all():
            self.stats.bad_blocks += 1
            log.warning(
                "stream: %d NaN/Inf samples replaced by silence", int((~np.isfinite(block)).sum())
            )
            block = np.where(np.isfinite(block), block, 0.0).astype(np.float32)
        self.pending = np.concatenate([self.pending, block])
        out = []
        while len(self.pending) >= self.block_samples:
            new, self.pending = np.split(self.pending, [self.block_samples])
            start = time.perf_counter()
            out.append(self._block(new))
            spent = time.perf_counter() - start
            self.stats.compute_s.append(spent)
            if spent > self.stats.block_s:
                self.stats.underruns += 1
                if self.stats.underruns == 1 or self.stats.underruns % 100 == 0:
                    log.warning(
                        "stream: block took %.0f ms, longer than the block (%.0f ms): "
                        "underrun %d (raise block_s or lower extra_s)",
                        spent * 1e3, self.stats.block_s * 1e3, self.stats.underruns,
                    )  # fmt: skip
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)

    def flush(self) -> np.ndarray:
        """Push silence until every sample fed so far has come out; returns that output."""
        pad = (-len(self.pending)) % self.block_samples
        tail_frames = self.x + self.s  # what is still inside the pipeline
        extra = -(-tail_frames // self.b) * self.block_samples
        return self.push(np.zeros(pad + extra, dtype=np.float32))

    # ---- one block ----------------------------------------------------------------------
    def _gate(self, new: np.ndarray) -> np.ndarray:
        """Mute the 10 ms frames quieter than `threshold_db` (RVC's input threshold)."""
        w = ck.WINDOW
        frames = new.reshape(-1, w)
        rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
        quiet = 20 * np.log10(np.maximum(rms, 1e-10)) < self.stream.threshold_db
        frames = frames.copy()
        frames[quiet] = 0.0
        return frames.reshape(-1)

    def _shift_in(self, new: np.ndarray) -> None:
        # the frames leaving the window carry the phase on, as the vocoder summed it (f0/100
        # cycles a frame: f0 · hop / sr), so the next block's sine continues this one's
        self.phase = (self.phase + cycles(self.f0_used[: self.b].sum())) % 1.0
        # per-frame state moves left by a block; the new frames start as silence (a silent
        # block runs no network; otherwise this block overwrites them)
        for frames, quiet in ((self.f0_used, 0.0), (self.f0_raw, 0.0),
                              (self.own, self._quiet_own), (self.retrieved, self._quiet_ret)):  # fmt: skip
            if frames is not None:
                frames[: -self.b] = frames[self.b :]
                frames[-self.b :] = quiet
        self.window[: -len(new)] = self.window[len(new) :]
        self.window[-len(new) :] = new

    def _block(self, new: np.ndarray) -> np.ndarray:
        new = self._fx.shift_input(new)
        self._shift_in(self._gate(self._highpass(new)))
        w, hop = ck.WINDOW, self.hop
        live = self.window[-(self.decoded + self.margin) * w :]
        if float(np.abs(live).max()) < SILENCE:  # nothing to convert: skip every network
            self.stats.silent_blocks += 1
            wav = np.zeros(self.decoded * hop, dtype=np.float32)
        else:
            wav = self._convert_window()
        out = self._sola(wav)
        out = self._fx.after(out, PEAK)
        return out

    def _features(self) -> np.ndarray:
        """Embedder features of every window frame [frames, dim]: the embedder runs on the
        newest `embedded` frames, and the fresh ones among them replace the cache's; older
        frames keep what they got when they were fresh (computed with `embed_context_s` of
        past and at least crossfade + search of future). Their index neighbours likewise:
        a frame's retrieval depends on its features alone."""
        w, k = ck.WINDOW, self.embedded
        span = self.window[-k * w :]
        own20 = self.conv.embedder.embed_batch([span], length=len(span))[0]
        own = to_frames(own20, k)
        if self.own is None:  # the stream starts in silence: the features of silence
            self._quiet_own = own[0].copy()  # the span starts before the stream did
            self.own = np.repeat(self._quiet_own[None], self.frames, axis=0)
        fresh = self.fresh if k < self.frames else k
        self.own[-fresh:] = own[-fresh:]
        if self.conv.index is not None:
            got = to_frames(retrieve(self.conv.index, own20, k=8), k)
            if self.retrieved is None:
                self._quiet_ret = got[0].copy()
                self.retrieved = np.repeat(self._quiet_ret[None], self.frames, axis=0)
            self.retrieved[-fresh:] = got[-fresh:]
        return self.own

    def _f0(self) -> np.ndarray:
        """The window's F0 (Hz, edited): the newest block estimated, the rest from the cache."""
        opts, w = self.options, ck.WINDOW
        span = self.window[-(self.b + self.c) * w :]
        f0 = np.asarray(self.conv.f0.for_conversion(span, opts.filter_radius), dtype=np.float64)
        # the newest frames are estimated without right context (pm leaves the last two
        # unvoiced; RVC drops the last one): the last block's are estimated again now that
        # audio follows them; older frames stay cached
        redo = self.redo
        got = f0[self.c - redo : self.c + self.b]
        first = self.frames - self.b - redo
        self.f0_raw[first : first + len(got)] = got
        f0 = edit.median_voiced(self.f0_raw.copy(), opts.f0_smooth)
        if opts.autotune:
            f0 = edit.autotune(f0, opts.autotune)
        return edit.transpose(f0, opts.pitch)

    def _convert_window(self) -> np.ndarray:
        """The decoded region's audio at the model's rate: [decoded · hop]."""
        conv, opts, n = self.conv, self.options, self.frames
        own = self._features()
        feats = own if self.retrieved is None else blend(own, self.retrieved, opts.index_rate)
        pitchf = self._f0() if conv.voice.use_f0 else None
        if pitchf is not None and opts.protect < 0.5:
            feats = protect_unvoiced(feats, own, pitchf, opts.protect)
        start = n - self.decoded - self.margin
        if pitchf is not None:
            self.f0_used = pitchf
            self._phase0.fill_((self.phase + cycles(pitchf[:start].sum())) % 1.0)
        # the sine sources continue the stream's phase for this call only: the same converter
        # converting files meanwhile keeps the offline path's random start phases
        with continued_phase(self._sources, self._phase0):
            wav = conv._synthesize(feats, pitchf, n, n, opts.speaker, decode=(start, n - start))
        wav = wav[self.margin * self.hop :]
        if opts.rms_mix_rate < 1:
            wav = rms_mix_block(
                self.window[-self.decoded * ck.WINDOW :], wav, self.hop, opts.rms_mix_rate
            )
        return wav

    def _sola(self, wav: np.ndarray) -> np.ndarray:
        """Align the new audio to the last tail, crossfade, keep the next tail."""
        xo, so, bo = self.x * self.hop, self.s * self.hop, self.b * self.hop
        k = sola_offset(wav, self.tail, so)
        seg = wav[k : k + bo + xo].copy()
        seg[:xo] = seg[:xo] * self.fade + self.tail * (1.0 - self.fade)
        self.tail = seg[bo : bo + xo].copy()
        # no whole-file peak to scale by, live: a hard limit where the offline path scales down
        return np.clip(seg[:bo], -PEAK, PEAK)


def convert_stream(
    stream: StreamingConverter, audio16k: np.ndarray, block: int | None = None
) -> np.ndarray:
    """Stream a whole 16 kHz array through `stream` in blocks and return the output aligned
    with the input (the pipeline's delay removed) and of the input's length at the model's rate."""
    block = block or stream.block_samples
    audio16k = np.asarray(audio16k, dtype=np.float32)
    outs = [stream.push(audio16k[i : i + block]) for i in range(0, len(audio16k), block)]
    outs.append(stream.flush())
    out = np.concatenate(outs)
    n = stream.output_length(len(audio16k))
    return out[stream.delay_samples : stream.delay_samples + n]
