"""The per-block signal pieces of live conversion (`rvc.infer.streaming`): the causal
high-pass, SOLA and its crossfade, 20 ms → 10 ms frames, a block's RMS mix."""

from __future__ import annotations

import numpy as np

from rvc.infer import chunks as ck


def fade_in(n: int) -> np.ndarray:
    """The WebUI's crossfade curve: sin² from 0 to 1 over n samples (fade-out is 1 − it)."""
    return (np.sin(0.5 * np.pi * np.linspace(0.0, 1.0, n)) ** 2).astype(np.float32)


def sola_offset(new: np.ndarray, tail: np.ndarray, search: int) -> int:
    """The shift in [0, search] at which `new` best matches `tail` (normalised correlation)."""
    n = len(tail)
    if search == 0 or not np.any(tail):
        return 0
    seg = new[: n + search].astype(np.float64)
    num = np.correlate(seg, tail.astype(np.float64), mode="valid")  # [search + 1]
    energy = np.convolve(seg**2, np.ones(n), mode="valid")
    return int(np.argmax(num / np.sqrt(energy + 1e-8)))


def to_frames(feats: np.ndarray, n: int) -> np.ndarray:
    """20 ms embedder frames → n 10 ms frames: each repeated twice, the last one repeated to
    fill (the embedder drops the final partial frame; the WebUI's realtime pads the same way)."""
    f = np.repeat(feats, 2, axis=0)[:n]
    if len(f) < n:
        f = np.concatenate([f, np.repeat(f[-1:], n - len(f), axis=0)])
    return f


def rms_mix_block(source16k: np.ndarray, out: np.ndarray, hop_out: int, rate: float) -> np.ndarray:
    """`rms_mix_rate` over one block: out's loudness moved towards the input's, with 40 ms RMS
    frames every 10 ms (the WebUI's realtime values) instead of the offline 1 s."""
    import torch
    import torch.nn.functional as F

    def envelope(x: np.ndarray, hop: int) -> torch.Tensor:
        frames = np.lib.stride_tricks.sliding_window_view(np.pad(x, (2 * hop, 2 * hop)), 4 * hop)
        rms = np.sqrt(np.mean(frames[::hop].astype(np.float64) ** 2, axis=1))
        return F.interpolate(torch.from_numpy(rms)[None, None], size=len(out), mode="linear")[0, 0]

    gain = envelope(source16k, ck.WINDOW) ** (1 - rate) * envelope(out, hop_out).clamp(
        min=1e-3
    ) ** (rate - 1)
    return (out * gain.numpy()).astype(np.float32)


class CausalHighpass:
    """The offline 48 Hz Butterworth high-pass, run forward only with its state kept across
    blocks (the offline path filters forward and back: zero phase; live cannot look ahead)."""

    def __init__(self) -> None:
        from scipy import signal

        self.sos = signal.butter(N=5, Wn=48, btype="high", fs=ck.SR, output="sos")
        self.state = np.zeros((self.sos.shape[0], 2))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        from scipy import signal

        y, self.state = signal.sosfilt(self.sos, x.astype(np.float64), zi=self.state)
        return y.astype(np.float32)


class StreamEffects:
    """A stream's formant shift (on the input) and effect chain (on the output), each with its
    state kept across blocks. A stream started without a formant shift gets no shifter: no
    latency for nothing, and none can be added mid-stream."""

    def __init__(self, opts, sample_rate: int):
        from rvc.audio.formant import FormantShifter
        from rvc.infer.effects import EffectChain

        self._chain, self.sample_rate = EffectChain, sample_rate
        self.formant = (
            FormantShifter(opts.formant, ck.SR, opts.formant_quefrency) if opts.formant else None
        )
        self.effects = EffectChain(opts.effects, sample_rate)

    @property
    def frames(self) -> int:
        """10 ms frames the formant shifter delays the input by (0 without one)."""
        return 0 if self.formant is None else self.formant.latency // ck.WINDOW

    def reset(self) -> None:
        if self.formant is not None:
            self.formant.reset()
        self.effects.reset()

    def update(self, old, new) -> None:
        """New options between blocks: the shift in place (no dropout), effects afresh."""
        if new.formant != old.formant or new.formant_quefrency != old.formant_quefrency:
            if self.formant is None:
                raise ValueError(
                    "formant: this stream started without a formant shift, and turning one on "
                    "would add its latency mid-stream; start it with convert.formant set"
                )
            if new.formant_quefrency != old.formant_quefrency:
                self.formant.set_quefrency(new.formant_quefrency)
            self.formant.set_semitones(new.formant)  # 0: the input, delayed as before
        if new.effects != old.effects:
            self.effects = self._chain(new.effects, self.sample_rate)

    def shift_input(self, block: np.ndarray) -> np.ndarray:
        # whole 10 ms frames in: exactly as many samples out
        return block if self.formant is None else self.formant.push(block)

    def after(self, out: np.ndarray, peak: float) -> np.ndarray:
        # silent blocks too: reverb tails and echoes ring on
        return np.clip(self.effects(out), -peak, peak) if self.effects.chain else out
