"""One conversion path: 16 kHz audio → F0 and content features → retrieval → synthesis.

`VoiceConverter.convert` follows the RVC WebUI pipeline step for step (checked against it by
`tests/infer/test_reference.py`): a 48 Hz high-pass, reflect padding, cuts at quiet points
(`rvc.infer.chunks`), per chunk the embedder's 20 ms frames blended with their k=8 nearest
training vectors, repeated ×2 to the 10 ms F0 grid, `protect` on unvoiced frames, the
synthesizer, then RMS mixing, resampling and a peak limit of 0.99. Before it all an optional
formant shift of the input (`rvc.audio.formant`), after it an optional effects chain
(`rvc.infer.effects`). Every user-facing entry (infer.py, the notebook, evaluation) calls it.
"""

from __future__ import annotations

import ctypes
import functools
import platform
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from rvc.errors import RVCError
from rvc.f0 import edit
from rvc.f0.coarse import f0_to_coarse
from rvc.infer import chunks as ck
from rvc.infer.options import ConvertOptions
from rvc.utils.device import compile_backend, inference_dtype

PEAK = 0.99  # the WebUI scales the output down to this peak when it would clip
MIN_SAMPLES = 400  # one embedder window (25 ms): anything shorter converts to nothing
SILENCE = 1e-4  # input peak (−80 dBFS) below which there is no voice: silence out, not noise
# how a fixed-shape F0 span is padded (np.pad mode): reflecting keeps FCPE within 78 dB of
# the unpadded track, zeros only 39-52 dB (tests/infer/test_converter.py)
F0_PAD = "reflect"


@functools.cache
def _malloc_trim() -> Any:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None


def trim_heap() -> None:
    """Return the heap's free pages to the system (glibc's `malloc_trim`; elsewhere nothing).
    glibc raises its mmap threshold to the largest block freed (up to 32 MB), so a chunk's
    freed activations stay in fragmented heaps that the next chunk does not reuse: +0.34 GB
    on a 10-min input; trimming after each chunk gives 0.21 GB of it back at no measurable
    cost (a fixed M_MMAP_THRESHOLD all of it, but at 10-25 % more CPU time: page faults)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


class ConversionError(RVCError, ValueError):
    """Input the pipeline cannot convert (too short, non-finite, wrong shape)."""


def highpass_16k(audio: np.ndarray) -> np.ndarray:
    """The WebUI's input filter: 5th-order Butterworth high-pass at 48 Hz, zero phase
    (`filtfilt` in transfer-function form, its default padding), float64."""
    from scipy import signal

    b, a = signal.butter(N=5, Wn=48, btype="high", fs=ck.SR)
    return signal.filtfilt(b, a, np.asarray(audio, dtype=np.float64))


def rms_mix(
    source: np.ndarray, source_sr: int, out: np.ndarray, out_sr: int, rate: float
) -> np.ndarray:
    """Give `out` the loudness envelope `out^rate · source^(1−rate)` (RVC's `change_rms`):
    RMS over 1 s frames every 0.5 s, linearly interpolated to every output sample."""
    import librosa
    import torch.nn.functional as F

    def envelope(x: np.ndarray, sr: int) -> torch.Tensor:
        rms = librosa.feature.rms(y=x, frame_length=sr // 2 * 2, hop_length=sr // 2)
        return F.interpolate(
            torch.from_numpy(rms).unsqueeze(0), size=len(out), mode="linear"
        ).squeeze()

    rms_in, rms_out = envelope(source, source_sr), envelope(out, out_sr)
    rms_out = torch.clamp(rms_out, min=1e-6)
    gain = torch.pow(rms_in, torch.tensor(1 - rate)) * torch.pow(rms_out, torch.tensor(rate - 1))
    return out * gain.numpy()


def protect_unvoiced(
    retrieved: np.ndarray, own: np.ndarray, pitchf: np.ndarray, protect: float
) -> np.ndarray:
    """RVC's `protect`: consonants and pauses (F0 < 1 Hz) keep the embedder's own features,
    blended back so that only `protect` of the retrieval stays there; voiced frames keep it all.
    retrieved, own [n, dim] at 10 ms frames, pitchf [n] Hz."""
    m = np.where(pitchf >= 1, 1.0, protect).astype(np.float32)[:, None]
    return retrieved * m + own * (1 - m)


def limit_peak(audio: np.ndarray, peak: float = PEAK, inplace: bool = False) -> np.ndarray:
    """Scale down to `peak` when louder (never up): the WebUI's clip guard (`inplace`: in
    `audio` itself, no second whole-output array)."""
    top = max(float(audio.max(initial=0.0)), -float(audio.min(initial=0.0)))  # no |x| copy
    if top <= peak:
        return audio
    return np.divide(audio, top / peak, out=audio if inplace else None)


class VoiceConverter:
    """A loaded voice model with the F0 estimator, embedder and index it converts with.

    Build it with `rvc.infer.load.load_converter` (files, names, configs) or directly from
    objects: `voice` a `rvc.io.voice_model.VoiceModel` with its synthesizer built, `f0` an
    `rvc.f0.base.F0Estimator` (None for a no-F0 model), `embedder` an
    `rvc.embedders.base.Embedder`, `index` a faiss index or None.
    """

    def __init__(
        self,
        voice: Any,
        embedder: Any,
        f0: Any = None,
        index: Any = None,
        device: str = "cpu",
        precision: str = "fp32",
        compile: bool | str = False,
    ):
        if voice.synthesizer is None:
            raise ValueError("the voice model's synthesizer is not built (use load_voice_model)")
        if voice.use_f0 and f0 is None:
            raise ValueError("this voice model is pitch-guided: an F0 estimator is required")
        from rvc.models.commons import has_weight_norm

        if has_weight_norm(voice.synthesizer):  # fold once: no weight recomputed per forward
            voice.synthesizer.remove_weight_norm()
        self.device = torch.device(device)
        # `device.inference_precision`: every network's weights cast once (no autocast); the
        # fp32 islands (RMVPE's mel, CREPE's and FCPE's decoding, the NSF phase) are their own
        self.dtype = inference_dtype(precision, self.device)
        voice.synthesizer.for_inference(self.dtype, self.device)
        embedder.cast(self.dtype)
        if f0 is not None:
            f0.cast(self.dtype)
        backend = compile_backend(compile)
        if backend is not None:
            # `device.compile`: the vocoder (most of the time) through torch.compile; a chunk of a
            # new length compiles once more, then dynamic shapes serve every other length
            voice.synthesizer.dec.compile(backend=backend)
        self.voice, self.embedder, self.f0, self.index = voice, embedder, f0, index
        self.sample_rate = int(voice.sample_rate)
        self.hop = self.sample_rate // 100  # output samples per 10 ms frame

    # ---- F0 -----------------------------------------------------------------------------
    def _f0(
        self, audio_pad: np.ndarray, chunk: ck.Chunk, opts: ConvertOptions, padded_len: int
    ) -> np.ndarray:
        """Edited F0 in Hz for the chunk's frames, from its span plus context. With fixed chunk
        shapes a network's span is padded at its end to `padded_len` plus that context (the
        extra frames dropped); pm and harvest have no per-shape caches, and padding would move
        their path search, so they see the exact span."""
        context = ck.seconds(opts.pad_s) // ck.WINDOW * ck.WINDOW
        start, stop = ck.f0_span(chunk, len(audio_pad), context)
        span = audio_pad[start:stop].astype(np.float32)
        if opts.chunk_shapes == "fixed" and self.f0.runs_network():
            span = np.pad(span, (0, padded_len + 2 * context - len(span)), mode=F0_PAD)
        # the method's own conversion-time post-processing (harvest's median filter) is its own
        f0 = self.f0.for_conversion(span, opts.filter_radius)
        f0 = np.asarray(f0, dtype=np.float64)
        f0 = edit.median_voiced(f0, opts.f0_smooth)
        if opts.autotune:
            f0 = edit.autotune(f0, opts.autotune)
        f0 = edit.transpose(f0, opts.pitch)
        first = chunk.frame0 - start // ck.WINDOW
        out = np.zeros(chunk.frames)
        got = f0[first : first + chunk.frames]
        out[: len(got)] = got
        return out

    # ---- content ------------------------------------------------------------------------
    def _features(self, audio: np.ndarray, padded_len: int) -> np.ndarray:
        """Embedder frames [n, dim] of a chunk, padded with masked zeros to `padded_len`."""
        return self.embedder.embed_batch([audio], length=padded_len)[0]

    def _retrieve(self, feats: np.ndarray, index_rate: float) -> np.ndarray:
        from rvc.index.search import blend, retrieve

        if self.index is None or index_rate == 0:
            return feats
        return blend(feats, retrieve(self.index, feats, k=8), index_rate).astype(np.float32)

    # ---- one chunk ----------------------------------------------------------------------
    @torch.inference_mode()
    def _chunk(self, audio_pad: np.ndarray, chunk: ck.Chunk, opts: ConvertOptions) -> np.ndarray:
        """The chunk's output at the model's rate, its context trimmed off."""
        audio = audio_pad[chunk.start : chunk.stop]
        padded_len = len(audio)
        if opts.chunk_shapes == "fixed":
            longest = ck.longest_chunk(
                ck.seconds(opts.pad_s), ck.seconds(opts.center_s), ck.seconds(opts.query_s)
            )
            padded_len = ck.padded_length(len(audio), longest, last=chunk.stop == len(audio_pad))
        feats = self._features(audio, padded_len)
        use_f0 = self.voice.use_f0
        keep = opts.protect < 0.5 and use_f0
        original = feats
        feats = self._retrieve(feats, opts.index_rate)
        feats = np.repeat(feats, 2, axis=0)  # 20 ms → 10 ms frames
        n = min(len(audio) // ck.WINDOW, len(feats), chunk.frames)  # frames the chunk really has
        pitchf = self._f0(audio_pad, chunk, opts, padded_len)[:n] if use_f0 else None
        if keep:
            feats = protect_unvoiced(
                feats[:n], np.repeat(original, 2, axis=0)[:n], pitchf, opts.protect
            )
        frames = padded_len // ck.WINDOW if opts.chunk_shapes == "fixed" else n
        wav = self._synthesize(feats, pitchf, n, frames, opts.speaker)
        pad_out = int(round(opts.pad_s * self.sample_rate))
        return wav[pad_out : len(wav) - pad_out]

    def _synthesize(
        self,
        feats: np.ndarray,
        pitchf: np.ndarray | None,
        n: int,
        frames: int,
        sid: int,
        decode: tuple[int, int] | None = None,
    ) -> np.ndarray:
        """The synthesizer on `n` real frames, zero-padded to `frames` (a static shape); with
        `decode=(start, k)` only frames [start, start + k) are vocoded (`Synthesizer.infer`)."""
        dim = feats.shape[1]
        phone = torch.zeros(1, frames, dim, device=self.device)
        phone[0, :n] = torch.from_numpy(np.ascontiguousarray(feats[:n], dtype=np.float32))
        lengths = torch.tensor([n], device=self.device)
        pitch = pf = None
        if pitchf is not None:
            pf = torch.zeros(1, frames, device=self.device)
            pf[0, :n] = torch.from_numpy(pitchf[:n].astype(np.float32))
            pitch = f0_to_coarse(torch.from_numpy(pitchf[:n])).to(self.device)
            pitch = torch.nn.functional.pad(pitch, (0, frames - n), value=1)[None]
        net = self.voice.synthesizer  # takes and gives fp32; its vocoder runs in self.dtype
        # pitchf stays fp32: the NSF phase is accumulated in fp32 (bf16 Hz would be ~8 cents off)
        # fixed shapes: the real frames only, long chunks in cache-sized pieces (exact: the
        # reference's one call on the whole chunk)
        whole = frames == n and decode is None
        wav = net.infer(phone, lengths, pitch, pf, sid, decode=decode,
                        vocode_frames=None if whole else n)[0]  # fmt: skip
        keep = n * self.hop if decode is None else decode[1] * self.hop
        return wav[0, 0, :keep].float().cpu().numpy()

    # ---- whole input --------------------------------------------------------------------
    def convert(
        self, audio16k: np.ndarray, opts: ConvertOptions | None = None, progress: bool = True
    ) -> np.ndarray:
        """Convert 16 kHz mono float audio; float32 at `opts.output_rate` (or the model's)."""
        opts = opts or ConvertOptions()
        audio16k = np.asarray(audio16k)
        if audio16k.ndim != 1:
            raise ConversionError(f"expected mono audio [samples], got shape {audio16k.shape}")
        if len(audio16k) < MIN_SAMPLES:
            raise ConversionError(
                f"input too short: {len(audio16k)} samples at 16 kHz (at least {MIN_SAMPLES}, 25 ms)"
            )
        if not np.isfinite(audio16k).all():
            raise ConversionError("input contains NaN/Inf samples")
        if float(np.abs(audio16k).max()) < SILENCE:
            # a model's answer to silence is its own faint hiss; silence in gives silence out
            rate = opts.output_rate or self.sample_rate
            return np.zeros(round(len(audio16k) * rate / ck.SR), dtype=np.float32)
        if opts.denoise:
            from rvc.audio.process import reduce_noise

            audio16k = reduce_noise(audio16k, ck.SR, strength=opts.denoise)
        if opts.formant:  # as Applio: the timbre the model hears moves, so the output's does
            from rvc.audio.formant import shift_formants

            audio16k = shift_formants(audio16k, opts.formant, ck.SR, opts.formant_quefrency)
        audio = highpass_16k(audio16k)
        pad = ck.seconds(opts.pad_s)
        # cut points from the float64 filter output (as the WebUI); then float32, which is all
        # the networks see: whole-input copies are the only memory that grows with the input
        plan = ck.plan(
            len(audio),
            pad,
            ck.seconds(opts.center_s),
            ck.seconds(opts.query_s),
            ck.seconds(opts.max_s),
            audio,
        )
        audio = audio.astype(np.float32)
        audio_pad = np.pad(audio, (pad, pad), mode="reflect")
        if opts.rms_mix_rate == 1:
            del audio
        bar = tqdm(
            plan, desc="convert", unit="chunk", disable=not progress or len(plan) < 2, leave=False
        )
        # one output array, filled chunk by chunk (no list of chunks, no concatenated copy);
        # its untouched tail is never paged in
        out = np.empty(self._output_bound(plan, opts), dtype=np.float32)
        filled = 0
        for c in bar:
            wav = self._chunk(audio_pad, c, opts)
            out[filled : filled + len(wav)] = wav
            filled += len(wav)
            trim_heap()
        del audio_pad
        out = out[:filled]
        if opts.rms_mix_rate != 1:
            out = rms_mix(audio, ck.SR, out, self.sample_rate, opts.rms_mix_rate)
        if opts.output_rate and opts.output_rate != self.sample_rate:
            from rvc.audio.process import resample

            out = resample(out, self.sample_rate, opts.output_rate)
        out = limit_peak(np.asarray(out, dtype=np.float32), inplace=True)
        if opts.effects:
            from rvc.infer.effects import apply_effects

            # on the output as it would be written without them; then the clip guard again
            # (reverb and gain can add to the peak)
            out = apply_effects(out, opts.output_rate or self.sample_rate, opts.effects)
            out = limit_peak(out, inplace=True)
        return out

    def _output_bound(self, plan: list[ck.Chunk], opts: ConvertOptions) -> int:
        """At least as many output samples as the chunks give (each at most its frames)."""
        pad_out = int(round(opts.pad_s * self.sample_rate))
        return sum(max(0, c.frames * self.hop - 2 * pad_out) for c in plan)
