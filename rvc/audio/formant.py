"""Formant shift: move a voice's spectral envelope (its timbre) and keep its pitch.

Per STFT frame the log magnitude is split by its real cepstrum into a smooth envelope (the
quefrencies below `quefrency_ms`, shorter than the voice's pitch period; iterated to the
"true envelope" through the harmonics' peaks) and the fine structure (the harmonics); the
envelope is stretched along frequency by 2^(semitones/12), the fine structure and the phase
stay, so the harmonics stay where they were (the F0) while the resonances that shape them
move. It is the cepstral timbre shift Applio applies to the 16 kHz input before conversion
(through the `stftpitchshift` package: pitch factor 1, `quefrency`, `distortion`), written
here as one streaming overlap-add, so live conversion runs it block by block with a fixed
latency and offline conversion runs the very same code on the whole input.
"""

from __future__ import annotations

import numpy as np

FRAME = 960  # 60 ms at 16 kHz: resolves the harmonics of a low voice (80 Hz) for the cepstrum
HOP = 160  # 10 ms, the streams' frame: any push of whole frames gives as many samples back
# lifter cutoff: shorter than the pitch period (3 ms: voices up to ~330 Hz), long enough that
# the envelope resolves formants ~100 Hz wide (Applio's 0.8-1 ms blurs F1 and F2 together: on
# a 120 Hz vowel they moved 3 % of an asked 12 %)
QUEFRENCY_MS = 3.0
# "true envelope" iterations: each lifts the smooth envelope to the harmonic peaks it passed
# under (plain cepstral smoothing averages the deep valleys between harmonics in too)
ITERATIONS = 8
MAX_SEMITONES = 12.0
_BATCH = 1024  # frames transformed at once (bounds memory on long inputs)
_FLOOR = 1e-9  # magnitudes below this (silence) get no envelope: log of zero


class FormantShifter:
    """Streaming formant shift of mono audio; output lags the input by `latency` samples."""

    def __init__(
        self,
        semitones: float,
        sample_rate: int = 16000,
        quefrency_ms: float = QUEFRENCY_MS,
        frame: int = FRAME,
        hop: int = HOP,
    ):
        if frame % hop:
            raise ValueError(f"frame ({frame}) must be a whole number of hops ({hop})")
        self.frame, self.hop, self.overlap = frame, hop, frame // hop
        self.sample_rate = sample_rate
        self.set_quefrency(quefrency_ms)
        self.window = np.hanning(frame + 1)[:frame]  # periodic Hann, analysis and synthesis
        # Hann² overlapped at frame/hop ≥ 3 sums to a constant: exact reconstruction
        self.norm = float(np.sum(self.window**2)) / hop
        self.set_semitones(semitones)
        self.reset()

    @property
    def latency(self) -> int:
        """Samples between an input sample and its shifted self (a frame less one hop)."""
        return self.frame - self.hop

    def set_quefrency(self, quefrency_ms: float) -> None:
        """A new envelope lifter from the next push on; the stream's state is kept."""
        lifter = max(1, int(round(quefrency_ms * 1e-3 * self.sample_rate)))
        if lifter >= self.frame // 2:
            raise ValueError(f"quefrency_ms={quefrency_ms} is longer than half a frame")
        self.lifter = lifter

    def set_semitones(self, semitones: float) -> None:
        """A new shift from the next push on (the latency stays the same)."""
        self.semitones = float(semitones)
        factor = 2.0 ** (self.semitones / 12)
        bins = self.frame // 2 + 1
        # the warped envelope at bin k is the original's at k / factor (linear between bins,
        # held at the ends): a factor > 1 moves every resonance up
        src = np.clip(np.arange(bins) / factor, 0, bins - 1)
        self._i0 = np.minimum(np.floor(src).astype(np.int64), bins - 2)
        self._frac = src - self._i0

    def reset(self) -> None:
        self._history = np.zeros(self.frame - self.hop)  # the last frame's input but a hop
        self._pending = np.zeros(0)  # input short of a whole hop
        self._acc = np.zeros((self.overlap - 1, self.hop))  # overlap-add sums still open

    def _smooth(self, log_mag: np.ndarray) -> np.ndarray:
        cep = np.fft.irfft(log_mag, n=self.frame, axis=1)
        q = self.lifter
        cep[:, q : self.frame - q + 1] = 0.0  # keep the low quefrencies
        return np.fft.rfft(cep, axis=1).real

    def _envelope(self, log_mag: np.ndarray) -> np.ndarray:
        """The log spectral envelope [n, bins] through the harmonics' peaks."""
        env = self._smooth(log_mag)
        for _ in range(ITERATIONS):
            env = self._smooth(np.maximum(log_mag, env))
        return env

    def _shift(self, frames: np.ndarray) -> np.ndarray:
        """Windowed frames [n, frame] → the same with their envelopes warped."""
        spec = np.fft.rfft(frames, axis=1)
        mag = np.abs(spec)
        log_mag = np.log(np.maximum(mag, _FLOOR))
        env = self._envelope(log_mag)
        warped = env[:, self._i0] * (1 - self._frac) + env[:, self._i0 + 1] * self._frac
        gain = np.exp(warped - env)
        gain[mag < _FLOOR] = 1.0
        return np.fft.irfft(spec * gain, n=self.frame, axis=1)

    def push(self, audio: np.ndarray) -> np.ndarray:
        """Feed samples; returns one output sample per input sample of every whole hop."""
        x = np.concatenate([self._pending, np.asarray(audio, dtype=np.float64).reshape(-1)])
        m = len(x) // self.hop
        self._pending = x[m * self.hop :]
        if m == 0:
            return np.zeros(0, dtype=np.float32)
        stream = np.concatenate([self._history, x[: m * self.hop]])
        self._history = stream[len(stream) - (self.frame - self.hop) :]
        r, hop = self.overlap, self.hop
        out = np.zeros((m + r - 1, hop))
        out[: r - 1] = self._acc
        for b in range(0, m, _BATCH):  # frame k covers stream[k·hop : k·hop + frame]
            k = min(_BATCH, m - b)
            view = np.lib.stride_tricks.sliding_window_view(
                stream[b * hop : (b + k - 1) * hop + self.frame], self.frame
            )[::hop]
            y = (self._shift(view * self.window) * self.window).reshape(k, r, hop)
            for j in range(r):  # frame k's j-th hop lands on output hop k + j
                out[b + j : b + j + k] += y[:, j]
        self._acc = out[m:].copy()
        return (out[:m].reshape(-1) / self.norm).astype(np.float32)


def shift_formants(
    audio: np.ndarray, semitones: float, sample_rate: int = 16000,
    quefrency_ms: float = QUEFRENCY_MS,
) -> np.ndarray:  # fmt: skip
    """A whole recording's formants shifted by `semitones` (0: the input itself, untouched)."""
    audio = np.asarray(audio)
    if semitones == 0 or len(audio) == 0:
        return audio
    shifter = FormantShifter(semitones, sample_rate, quefrency_ms)
    tail = shifter.latency + (-len(audio)) % shifter.hop
    out = shifter.push(np.concatenate([audio, np.zeros(tail, dtype=audio.dtype)]))
    return out[shifter.latency : shifter.latency + len(audio)].astype(audio.dtype, copy=False)
