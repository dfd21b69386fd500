"""Property-based tests (Hypothesis) of loading, slicing, F0, content features and conversion.

Random lengths, sample rates, channel counts and amplitudes, with silence, clipping and NaN.
Two properties everywhere: a bad input raises a documented exception whose message names the
file/problem (never a bare crash), and every output has the length its formula says (stated
in each test). Budgets are small and derandomized: the same examples on every run.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from rvc.audio.process import highpass, normalize, resample
from rvc.audio.read import AudioDecodeError, load_audio
from rvc.audio.slicer import chunk_ranges, slice_auto, slice_simple
from rvc.f0.base import HOP, n_frames
from rvc.f0.coarse import f0_to_coarse
from rvc.f0.dsp import HarvestEstimator, PMEstimator

SETTINGS = {
    "deadline": None,
    "derandomize": True,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
}
RATES = [8000, 11025, 16000, 22050, 32000, 40000, 44100, 48000, 96000]


def resampled_len(n: int, sr_in: int, sr_out: int) -> int:
    """Samples after resampling `n` samples (soxr): n·out/in rounded half up."""
    return n if sr_in == sr_out else math.floor(n * sr_out / sr_in + 0.5)


@st.composite
def signals(draw, min_len: int = 0, max_len: int = 4000, channels: int = 1) -> np.ndarray:
    """[T] (or [T, C]) float32: silence, a tone, noise, or a tone driven into clipping, at a
    random amplitude from -120 dBFS to +12 dBFS."""
    n = draw(st.integers(min_len, max_len))
    kind = draw(st.sampled_from(["silence", "tone", "noise", "clipped"]))
    amp = draw(st.sampled_from([0.0, 1e-6, 1e-3, 0.1, 0.5, 1.0, 4.0]))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    t = np.arange(n)[:, None] / 16000
    f = draw(st.floats(60.0, 900.0))
    if kind == "silence":
        x = np.zeros((n, channels))
    elif kind == "noise":
        x = amp * rng.standard_normal((n, channels))
    else:
        x = amp * np.sin(2 * np.pi * f * t + np.arange(channels))
        if kind == "clipped":
            x = np.clip(8 * x, -1.0, 1.0)  # a square-ish wave at full scale
    x = x.astype(np.float32)
    return x[:, 0] if channels == 1 else x


def with_non_finite(draw, x: np.ndarray) -> np.ndarray:
    """`x` with a NaN or ±Inf at a random sample."""
    x = x.copy()
    i = draw(st.integers(0, len(x) - 1))
    x.reshape(len(x), -1)[i, 0] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    return x


# ---- loading ---------------------------------------------------------------------------------
@settings(max_examples=25, **SETTINGS)
@given(data=st.data())
def test_load_audio_gives_the_right_length_or_a_clear_error(data):
    sr = data.draw(st.sampled_from(RATES), label="sr")
    channels = data.draw(st.integers(1, 3), label="channels")
    x = data.draw(signals(0, 3000, channels=channels), label="audio")
    x = x.reshape(len(x), channels)
    subtype = data.draw(st.sampled_from(["PCM_16", "FLOAT"]), label="subtype")
    bad = subtype == "FLOAT" and len(x) > 0 and data.draw(st.booleans(), label="nan")
    if bad:
        x = with_non_finite(data.draw, x)
    target = data.draw(st.sampled_from([None, 16000, 40000]), label="target_sr")
    mono = data.draw(st.booleans(), label="mono")
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "take 1.wav"
        sf.write(path, x, sr, subtype=subtype)
        too_short = len(x) < max(2, round(0.001 * sr))  # load_audio's min_duration, 1 ms
        if too_short or bad:
            with pytest.raises(AudioDecodeError, match="take 1.wav") as err:
                load_audio(path, sr=target, mono=mono)
            assert ("too short" if too_short else "NaN/Inf") in str(err.value)
            return
        audio, rate = load_audio(path, sr=target, mono=mono)
        stored, _ = sf.read(path, dtype="float32", always_2d=True)
    # length: the file's frames, resampled: round_half_up(frames · target / sr)
    assert rate == (target or sr)
    expected = resampled_len(len(x), sr, rate)
    assert audio.shape == ((expected,) if mono else (expected, channels))
    assert audio.dtype == np.float32 and np.isfinite(audio).all()
    if rate == sr:  # unresampled: exactly the file's samples (mono: the channels' mean)
        want = stored.mean(axis=1) if mono else stored
        np.testing.assert_allclose(audio, want, atol=1e-6)


@settings(max_examples=12, **SETTINGS)
@given(
    cut=st.floats(0.0, 1.0),
    garbage=st.binary(min_size=1, max_size=64),
    suffix=st.sampled_from([".wav", ".flac", ".mp3"]),
)
def test_damaged_files_decode_partly_or_fail_clearly(cut, garbage, suffix):
    x = np.sin(np.arange(8000) / 8000 * 2 * np.pi * 200).astype(np.float32)
    with tempfile.TemporaryDirectory() as d:
        good = Path(d) / "good.wav"
        sf.write(good, x, 8000, subtype="PCM_16")
        blob = good.read_bytes()
        bad = Path(d) / f"broken{suffix}"
        bad.write_bytes(blob[: int(cut * len(blob))] + garbage)  # truncated, then junk
        try:
            audio, rate = load_audio(bad)
        except AudioDecodeError as e:
            assert f"broken{suffix}" in str(e) and str(e).split(": ", 1)[1]
            return
    # what decodes is audio: finite, mono, at most the original length (plus the junk bytes)
    assert audio.ndim == 1 and np.isfinite(audio).all() and rate > 0
    assert len(audio) <= len(x) + len(garbage)


# ---- slicing and processing --------------------------------------------------------------------
@st.composite
def recordings(draw) -> tuple[np.ndarray, int]:
    """Several pieces (silence, tones, noise, clipped tones) at random levels, at a random rate."""
    sr = draw(st.sampled_from([16000, 32000, 40000, 48000]))
    pieces = draw(st.lists(signals(0, 4 * 16000), min_size=1, max_size=4))
    x = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
    return x, sr


@settings(max_examples=25, **SETTINGS)
@given(rec=recordings(), nan=st.booleans(), data=st.data())
def test_slice_auto_ranges_are_valid_chunks(rec, nan, data):
    x, sr = rec
    if nan and len(x):  # cannot come from load_audio (it refuses NaN), must not crash either
        x = with_non_finite(data.draw, x)
    ranges = slice_auto(x, sr)
    n_chunk, n_overlap, n_min = round(3.0 * sr), round(0.3 * sr), round(0.5 * sr)
    # every chunk: inside the audio, min_chunk <= length <= chunk_len, in order
    for a, b in ranges:
        assert 0 <= a < b <= len(x)
        assert n_min <= b - a <= n_chunk, (a, b)
    for (_, b0), (a1, _) in zip(ranges, ranges[1:], strict=False):
        assert b0 <= a1 or b0 - a1 == n_overlap  # overlap: exactly within a region, else none
    assert [a for a, _ in ranges] == sorted(a for a, _ in ranges)
    if len(x) and not nan and np.abs(x).max() == 0:
        assert ranges == []  # digital silence gives no slice


@settings(max_examples=25, **SETTINGS)
@given(
    n=st.integers(0, 20 * 48000),
    sr=st.sampled_from([16000, 32000, 40000, 48000]),
    chunk=st.floats(0.5, 4.0),
    overlap_frac=st.floats(0.0, 0.9),
    min_frac=st.floats(0.0, 1.0),
)
def test_chunks_tile_the_audio_with_the_stated_overlap(n, sr, chunk, overlap_frac, min_frac):
    overlap, min_chunk = chunk * overlap_frac, chunk * min_frac
    assume(round(overlap * sr) < round(chunk * sr))
    ranges = slice_simple(np.zeros(n, np.float32), sr, chunk, overlap, min_chunk)
    assert ranges == chunk_ranges(0, n, sr, chunk, overlap, min_chunk)
    n_chunk, n_overlap, n_min = round(chunk * sr), round(overlap * sr), round(min_chunk * sr)
    if n < max(1, n_min):
        assert ranges == []
        return
    # full chunks of n_chunk samples, each starting n_chunk - n_overlap after the previous;
    # at most the last one shorter; nothing longer than min_chunk is lost at the end
    assert ranges[0][0] == 0 and ranges[-1][1] <= n
    for (a0, b0), (a1, _) in zip(ranges, ranges[1:], strict=False):
        assert b0 - a0 == n_chunk and b0 - a1 == n_overlap
    assert 0 < ranges[-1][1] - ranges[-1][0] <= n_chunk
    assert n - ranges[-1][1] < max(n_min, 1)


@settings(max_examples=25, **SETTINGS)
@given(x=signals(0, 20000), sr=st.sampled_from(RATES), to=st.sampled_from(RATES))
def test_processing_keeps_lengths_and_finiteness(x, sr, to):
    assert highpass(x, sr).shape == x.shape  # zero-phase filter: same length
    y = normalize(x)
    assert y.shape == x.shape and np.isfinite(y).all()
    peak = float(np.abs(x).max(initial=0.0))
    # RVC's blend: peak becomes 0.9·0.75 + 0.25·peak (silence stays silence)
    assert float(np.abs(y).max(initial=0.0)) == pytest.approx(
        0.675 + 0.25 * peak if peak else 0.0, rel=1e-5, abs=1e-7
    )
    r = resample(x, sr, to)
    assert r.shape == (resampled_len(len(x), sr, to),) and np.isfinite(r).all()


# ---- F0 --------------------------------------------------------------------------------------
def _check_f0(est, x: np.ndarray) -> None:
    f0 = est.compute(x)
    # one frame per 10 ms: len = T // 160, float32 Hz, 0 (unvoiced) or within [f0_min, f0_max]
    assert f0.shape == (len(x) // HOP,) == (n_frames(len(x)),)
    assert f0.dtype == np.float32 and np.isfinite(f0).all()
    voiced = f0[f0 > 0]
    assert ((voiced >= est.f0_min) & (voiced <= est.f0_max)).all()
    if not np.abs(x).any():
        assert not voiced.size  # silence is unvoiced


@settings(max_examples=25, **SETTINGS)
@given(x=signals(0, 16000))
def test_pm_frames_are_t_over_160(x):
    _check_f0(PMEstimator(), x)


@settings(max_examples=6, **SETTINGS)
@given(x=signals(0, 6000))
def test_harvest_frames_are_t_over_160(x):
    _check_f0(HarvestEstimator(), x)


@settings(max_examples=10, **SETTINGS)
@given(x=signals(1, 4000), est=st.sampled_from([PMEstimator(), HarvestEstimator()]), data=st.data())
def test_f0_refuses_nan_and_multichannel_clearly(x, est, data):
    with pytest.raises(ValueError, match="NaN or inf"):
        est.compute(with_non_finite(data.draw, x))
    with pytest.raises(ValueError, match=r"mono audio of shape \[T\]"):
        est.compute(np.stack([x, x], axis=1))


@settings(max_examples=25, **SETTINGS)
@given(
    f0=st.lists(
        st.floats(allow_nan=True, allow_infinity=True, width=32) | st.floats(0.0, 2000.0),
        max_size=50,
    )
)
def test_coarse_pitch_is_always_1_to_255(f0):
    a = np.asarray(f0, dtype=np.float32)
    c = f0_to_coarse(a)
    # same shape, ints 1..255; unvoiced (<= 0, NaN) is 1; numpy and torch agree bit for bit
    assert c.shape == a.shape and c.dtype == np.int64
    assert ((c >= 1) & (c <= 255)).all()
    assert (c[~(a > 0)] == 1).all()
    np.testing.assert_array_equal(f0_to_coarse(torch.from_numpy(a)).numpy(), c)
    voiced = np.flatnonzero(a > 0)  # monotone in F0
    order = voiced[np.argsort(a[voiced], kind="stable")]
    assert (np.diff(c[order]) >= 0).all()


# ---- content features ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def spectral():
    from rvc.embedders.spectral import SpectralEmbedder

    return SpectralEmbedder(version="v2")


@settings(max_examples=20, **SETTINGS)
@given(clips=st.lists(signals(0, 12000), min_size=1, max_size=3), data=st.data())
def test_spectral_features_have_n_frames_per_clip(spectral, clips, data):
    from rvc.embedders.hubert import conv_frames

    t = max(len(c) for c in clips)
    batch = torch.zeros(len(clips), t)
    mask = torch.ones(len(clips), t, dtype=torch.bool)  # True = padding
    for i, c in enumerate(clips):
        batch[i, : len(c)] = torch.from_numpy(c)
        mask[i, : len(c)] = False
    if t < 400:  # shorter than one 25 ms window
        with pytest.raises(ValueError, match="too short"):
            spectral(batch, padding_mask=mask)
        return
    out = spectral(batch, padding_mask=mask)
    # [B, conv_frames(T), dim] (HuBERT's conv front end); a clip's frames past its own
    # n_frames(len) are zero, and they equal the clip embedded alone
    assert out.shape == (len(clips), conv_frames(t), 768) and torch.isfinite(out).all()
    for i, c in enumerate(clips):
        k = spectral.n_frames(len(c))
        assert not out[i, k:].any()
        if k:
            torch.testing.assert_close(out[i, :k], torch.from_numpy(spectral.embed(c)))
    bad = with_non_finite(data.draw, clips[0]) if len(clips[0]) >= 400 else None
    if bad is not None:  # NaN in: a clear error, not NaN features
        with pytest.raises(ValueError, match="NaN/Inf"):
            spectral.embed(bad)


# ---- conversion ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def conv(tmp_path_factory):
    """The tiny 40 kHz voice of tests/infer (spectral features, pm F0, an index)."""
    from rvc.embedders.spectral import SpectralEmbedder
    from rvc.index.build import FaissIndex, build_index
    from rvc.infer import load_converter
    from tests.infer.conftest import save_ours, voice16k

    root = tmp_path_factory.mktemp("voice")
    save_ours(root / "v.pth")
    feats = SpectralEmbedder(version="v2").embed(voice16k(6.0, f0=210.0, seed=3))
    build_index(feats, FaissIndex(), root / "v.index")
    return load_converter(root / "v.pth", index="auto", f0="pm")


def converted_len(conv, n: int, output_rate: int) -> int:
    """Samples `convert` returns for `n` samples at 16 kHz (one chunk: n <= 41 s).

    Silence (peak < 1e-4): round(n · rate / 16000). Otherwise, as the RVC WebUI: the padded
    chunk (n + 2 s) gives f = min(its 10 ms frames, 2 × its 20 ms embedder frames) frames of
    `hop` samples, less 1 s of context at each end, then resampled to `output_rate`.
    """
    rate = output_rate or conv.sample_rate
    total = n + 2 * 16000
    f = min(total // 160, 2 * conv.embedder.n_frames(total))
    return resampled_len(f * conv.hop - 2 * conv.sample_rate, conv.sample_rate, rate)


@settings(max_examples=8, **SETTINGS)
@given(
    x=signals(400, 40000),
    output_rate=st.sampled_from([0, 16000, 44100]),
    rms_mix=st.sampled_from([1.0, 0.5]),
)
def test_convert_length_follows_the_formula(conv, x, output_rate, rms_mix):
    from rvc.infer import ConvertOptions

    rate = output_rate or conv.sample_rate
    silent = float(np.abs(x).max()) < 1e-4
    expected = round(len(x) * rate / 16000) if silent else converted_len(conv, len(x), output_rate)
    assert expected > 0  # 400 samples (25 ms) is the shortest input converted
    y = conv.convert(x, ConvertOptions(output_rate=output_rate, rms_mix_rate=rms_mix), False)
    assert y.shape == (expected,) and y.dtype == np.float32 and np.isfinite(y).all()
    assert abs(len(y) - len(x) * rate / 16000) <= 0.03 * rate  # within 30 ms of the input
    assert np.abs(y).max(initial=0.0) <= np.float32(0.99)  # the peak limit (float32)
    if silent:
        assert not y.any()


@settings(max_examples=15, **SETTINGS)
@given(x=signals(0, 3000), kind=st.sampled_from(["nan", "short", "stereo"]), data=st.data())
def test_convert_refuses_bad_input_clearly(conv, x, kind, data):
    from rvc.infer import ConversionError

    if kind == "nan":
        assume(len(x) >= 400)
        x, match = with_non_finite(data.draw, x), "NaN/Inf"
    elif kind == "short":
        x, match = x[: data.draw(st.integers(0, 399))], "too short"
    else:
        x, match = np.stack([x, x], axis=1), "expected mono"
    with pytest.raises(ConversionError, match=match):
        conv.convert(x, progress=False)


def test_convert_of_a_few_ms_is_refused_not_emptied(conv):
    """10–25 ms would convert to nothing (and crash the RMS mix): a clear error instead."""
    from rvc.infer import ConversionError, ConvertOptions

    x = (0.3 * np.sin(np.arange(399) / 16000 * 2 * np.pi * 150)).astype(np.float32)
    with pytest.raises(ConversionError, match="too short"):
        conv.convert(x, ConvertOptions(rms_mix_rate=0.5), progress=False)
    y = conv.convert(np.pad(x, (0, 1)), ConvertOptions(rms_mix_rate=0.5), progress=False)
    assert y.shape == (converted_len(conv, 400, 0),) and len(y) > 0
