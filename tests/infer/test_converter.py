"""The conversion pipeline on tiny models: lengths, the knobs' meanings, chunking, silence."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from rvc.infer import ConversionError, ConvertOptions
from rvc.infer import chunks as ck
from rvc.infer.converter import VoiceConverter
from tests.infer.conftest import converter, voice16k


def _capture(conv: VoiceConverter, monkeypatch) -> list[dict]:
    """Record what each chunk hands the synthesizer (features and Hz F0)."""
    seen: list[dict] = []
    synth = VoiceConverter._synthesize

    def spy(self, feats, pitchf, n, frames, sid):
        seen.append(
            {"feats": feats[:n].copy(), "pitchf": None if pitchf is None else pitchf[:n].copy()}
        )
        return synth(self, feats, pitchf, n, frames, sid)

    monkeypatch.setattr(VoiceConverter, "_synthesize", spy)
    return seen


def test_converts_with_the_models_rate_and_the_inputs_length(voice_files, quiet):
    conv = converter(voice_files)
    x = voice16k(4.0)
    y = conv.convert(x, ConvertOptions(index_rate=0.5), progress=False)
    assert conv.sample_rate == 40000 and y.dtype == np.float32 and np.isfinite(y).all()
    # the WebUI drops the last partial embedder frame of each chunk: within 30 ms of the input
    assert abs(len(y) - len(x) * 40000 // 16000) <= 0.03 * 40000
    assert 0 < np.abs(y).max() <= 0.99
    y16 = conv.convert(x, ConvertOptions(output_rate=16000), progress=False)
    assert abs(len(y16) - len(x)) <= 0.03 * 16000


def test_pitch_plus_12_doubles_the_f0_fed_to_the_source(voice_files, quiet, monkeypatch):
    conv = converter(voice_files)
    seen = _capture(conv, monkeypatch)
    x = voice16k(3.0)
    conv.convert(x, ConvertOptions(pitch=0), progress=False)
    conv.convert(x, ConvertOptions(pitch=12), progress=False)
    f0, up = seen[0]["pitchf"], seen[1]["pitchf"]
    voiced = f0 > 0
    assert voiced.mean() > 0.3 and np.median(f0[voiced]) == pytest.approx(150, rel=0.05)
    np.testing.assert_allclose(up[voiced], 2 * f0[voiced], rtol=1e-6)
    assert (up[~voiced] == 0).all()


def test_index_rate_0_equals_no_index(voice_files):
    x = voice16k(3.0)
    with_index, without = converter(voice_files), converter(voice_files, index=None)
    assert with_index.index is not None and without.index is None
    outs = []
    for conv in (with_index, without):
        torch.manual_seed(0)
        outs.append(conv.convert(x, ConvertOptions(index_rate=0.0), progress=False))
    np.testing.assert_array_equal(outs[0], outs[1])
    torch.manual_seed(0)
    assert not np.array_equal(
        with_index.convert(x, ConvertOptions(index_rate=0.7), progress=False), outs[0]
    )


def test_protect_keeps_unvoiced_features_as_without_retrieval(voice_files, quiet, monkeypatch):
    conv = converter(voice_files)
    seen = _capture(conv, monkeypatch)
    x = voice16k(3.0)
    for opts in (ConvertOptions(index_rate=0.0), ConvertOptions(index_rate=0.8, protect=0.0),
                 ConvertOptions(index_rate=0.8, protect=0.5)):  # fmt: skip
        conv.convert(x, opts, progress=False)
    plain, protected, off = (s["feats"] for s in seen)
    unvoiced = seen[0]["pitchf"] == 0
    assert 0.1 < unvoiced.mean() < 0.9
    # protect=0: consonants and pauses keep the embedder's own features exactly ...
    np.testing.assert_allclose(protected[unvoiced], plain[unvoiced], rtol=0, atol=1e-6)
    # ... while voiced frames take the retrieved ones; protect=0.5 (RVC's "off") retrieves everywhere
    np.testing.assert_array_equal(protected[~unvoiced], off[~unvoiced])
    assert np.abs(off[unvoiced] - plain[unvoiced]).mean() > 1e-3
    # in between, protect is the share of retrieval kept on unvoiced frames
    conv.convert(x, ConvertOptions(index_rate=0.8, protect=0.25), progress=False)
    np.testing.assert_allclose(
        seen[-1]["feats"][unvoiced], 0.25 * off[unvoiced] + 0.75 * plain[unvoiced], atol=1e-5
    )


def test_chunked_equals_whole_away_from_seams_without_clicks(voice_files, quiet):
    conv = converter(voice_files, index=None)
    x = voice16k(12.0)
    whole = conv.convert(x, ConvertOptions(max_s=60.0), progress=False)
    opts = ConvertOptions(pad_s=1.0, query_s=1.0, center_s=3.0, max_s=4.0)
    parts = conv.convert(x, opts, progress=False)
    from rvc.infer import chunks as ck
    from rvc.infer.converter import highpass_16k

    cuts = [c.start for c in ck.plan(len(x), 16000, 48000, 16000, 64000, highpass_16k(x))][1:]
    assert len(cuts) >= 3
    n = min(len(whole), len(parts))
    seams = np.array(cuts) * 40000 // 16000
    away = np.ones(n, bool)
    for s in seams:
        away[max(0, s - 4000) : s + 4000] = False
    err = np.abs(whole[:n] - parts[:n])[away]
    scale = np.abs(whole[:n][away]).max()
    # the tiny model's attention sees ±1 s of context instead of the whole input: close, not equal
    assert err.mean() < 0.05 * scale and np.corrcoef(whole[:n][away], parts[:n][away])[0, 1] > 0.95
    steps = np.abs(np.diff(parts))
    typical = np.percentile(steps, 99.9)
    for s in seams:  # no step at a seam larger than the signal's own steepest steps
        assert steps[s - 3 : s + 3].max() <= typical * 1.5, s


def test_fixed_shapes_pad_chunks_to_few_lengths_and_change_little(voice_files, quiet, monkeypatch):
    conv = converter(voice_files)
    seen = []
    synth = VoiceConverter._synthesize
    monkeypatch.setattr(VoiceConverter, "_synthesize",
                        lambda self, f, p, n, frames, sid: seen.append(frames) or synth(self, f, p, n, frames, sid))  # fmt: skip
    opts = ConvertOptions(pad_s=1.0, query_s=1.0, center_s=3.0, max_s=4.0)
    x = voice16k(11.0)
    exact = conv.convert(x, opts.with_(chunk_shapes="exact"), progress=False)
    exact_shapes = set(seen)
    seen.clear()
    fixed = conv.convert(x, opts, progress=False)  # chunk_shapes="fixed" is the default
    longest = ck.longest_chunk(16000, 48000, 16000) // ck.WINDOW
    assert seen[:-1] == [longest] * (len(seen) - 1) and len(exact_shapes) > 2
    assert len(fixed) == len(exact)
    # pm sees the exact span: what is left is the padded embedder and synthesizer, rounding
    assert snr_db(exact, fixed) > 100  # 138 dB measured


def snr_db(ref: np.ndarray, y: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(ref**2) / max(np.sum((y - ref) ** 2), 1e-30)))


def test_fixed_shapes_stay_close_to_exact_with_a_network_f0(voice_files, quiet):
    # FCPE's span is reflect-padded: 78 dB measured here and on 100 s at the default chunking
    # (zeros: 52 and 39 dB), so far under the synthesizer's own bf16 noise (44 dB)
    conv = converter(voice_files, index=None, f0="fcpe")
    opts = ConvertOptions(pad_s=1.0, query_s=1.0, center_s=3.0, max_s=4.0)
    x = voice16k(11.0)
    exact = conv.convert(x, opts.with_(chunk_shapes="exact"), progress=False)
    fixed = conv.convert(x, opts, progress=False)
    assert len(fixed) == len(exact) and snr_db(exact, fixed) > 65


def test_fixed_shapes_are_a_few_lengths_whatever_the_input():
    longest = ck.longest_chunk(ck.seconds(1.0), ck.seconds(38.0), ck.seconds(6.0))
    assert longest == ck.seconds(52.0) + 2 * ck.WINDOW
    # every length a last chunk can have (up to center + query + 2·pad) maps to a few rungs,
    # each on the frame grid, at most 19 % longer than the chunk
    lengths = range(ck.seconds(4.0), ck.seconds(46.0), 997)
    rungs = {n: ck.padded_length(n, longest, last=True) for n in lengths}
    assert len(set(rungs.values())) <= 16
    assert all(n <= r <= n * ck.LADDER + ck.WINDOW and r % ck.WINDOW == 0 for n, r in rungs.items())
    assert ck.padded_length(ck.seconds(30.0), longest, last=False) == longest
    with pytest.raises(ValueError, match="longer than the longest"):
        ck.padded_length(longest + 1, longest, last=False)


def test_bucket_s_is_refused_with_its_replacement():
    with pytest.raises(ValueError, match="chunk_shapes"):
        ConvertOptions.from_mapping({"bucket_s": 2.0})
    assert ConvertOptions.from_mapping({"bucket_s": None}) == ConvertOptions()
    with pytest.raises(ValueError, match="chunk_shapes"):
        ConvertOptions(chunk_shapes="bucketed")


def test_silence_in_gives_silence_out(voice_files):
    y = converter(voice_files).convert(np.zeros(32000, np.float32), progress=False)
    assert len(y) == 80000 and not y.any()


@pytest.mark.parametrize("bad,match", [(np.zeros(1), "too short"), (np.full(16000, np.nan), "NaN"),
                                       (np.zeros((2, 16000)), "mono")])  # fmt: skip
def test_unusable_input_is_a_clear_error(voice_files, bad, match):
    with pytest.raises(ConversionError, match=match):
        converter(voice_files).convert(bad, progress=False)


@pytest.mark.parametrize("knob,value", [("index_rate", 1.5), ("protect", 0.7), ("f0_smooth", 4),
                                        ("rms_mix_rate", -0.1), ("center_s", 0.5)])  # fmt: skip
def test_out_of_range_knobs_are_refused(knob, value):
    with pytest.raises(ValueError, match=knob):
        ConvertOptions(**{knob: value})


def test_rms_mix_follows_the_input_envelope(voice_files, quiet):
    conv = converter(voice_files, index=None)
    x = voice16k(4.0)
    x = x * np.linspace(0.1, 1.0, len(x), dtype=np.float32)
    own = conv.convert(x, ConvertOptions(rms_mix_rate=1.0), progress=False)
    mixed = conv.convert(x, ConvertOptions(rms_mix_rate=0.0), progress=False)

    def env(y, sr):  # RMS per 0.5 s
        h = sr // 2
        return np.sqrt([np.mean(y[i : i + h] ** 2) for i in range(0, len(y) - h, h)])

    e_in, e_mixed, e_own = env(x, 16000), env(mixed, 40000), env(own, 40000)
    k = min(len(e_in), len(e_mixed))
    voiced = e_in[:k] > 0.05
    # rate 0 takes the input's loudness curve: its ratio to the input's is nearly constant
    ratio = e_mixed[:k][voiced] / e_in[:k][voiced]
    assert ratio.std() / ratio.mean() < 0.35
    assert not np.allclose(e_own[:k], e_mixed[:k])


def test_loud_output_is_scaled_to_the_webui_peak_never_up():
    from rvc.infer.converter import limit_peak

    loud = np.array([0.5, -2.0, 1.0])
    np.testing.assert_allclose(limit_peak(loud), loud * 0.99 / 2.0)
    quiet_ = np.array([0.1, -0.5])
    assert limit_peak(quiet_) is quiet_


def test_denoise_cleans_what_the_models_hear(voice_files, monkeypatch):
    conv = converter(voice_files)
    heard = []
    f0 = conv.f0.compute
    monkeypatch.setattr(conv.f0, "compute", lambda a: heard.append(a.copy()) or f0(a))
    x = voice16k(3.0)
    noisy = x + 0.03 * np.random.default_rng(0).standard_normal(len(x)).astype(np.float32)
    conv.convert(noisy, ConvertOptions(), progress=False)
    conv.convert(noisy, ConvertOptions(denoise=0.9), progress=False)
    pause = slice(16000 + 200, 16000 + 4000)  # the first 0.25 s of input: no voice (1 s pad before)
    raw, clean = (float(np.sqrt(np.mean(h[pause] ** 2))) for h in heard)
    assert clean < 0.5 * raw


def test_f0_edits_reach_the_source(voice_files, quiet, monkeypatch):
    conv = converter(voice_files)
    seen = _capture(conv, monkeypatch)
    x = voice16k(3.0, f0=152.0)  # 152 Hz: between D#3 (155.6) and D3 (146.8)
    conv.convert(x, ConvertOptions(autotune=1.0), progress=False)
    voiced = seen[0]["pitchf"] > 0
    notes = 12 * np.log2(seen[0]["pitchf"][voiced] / 440.0)
    np.testing.assert_allclose(notes, np.round(notes), atol=1e-6)


def test_harvest_f0_is_median_filtered_once_as_rvc_does(voice_files, quiet, monkeypatch):
    """RVC's pipeline: WORLD harvest + stonemask, then `medfilt(f0, 3)` once (filter_radius > 2)
    over the whole track; extraction stores it unfiltered. Filtering twice shifts frames."""
    import pyworld
    from scipy import signal

    from rvc.infer.converter import highpass_16k

    conv = converter(voice_files, index=None, f0="harvest")
    seen = _capture(conv, monkeypatch)
    x = voice16k(1.0, f0=140.0, seed=5)
    x = x * (1 + 0.3 * np.sin(np.arange(len(x)) / 900.0)).astype(np.float32)  # uneven loudness
    opts = ConvertOptions(index_rate=0, pad_s=0.3)  # a short pad: harvest is slow
    conv.convert(x, opts, progress=False)
    (got,) = [s["pitchf"] for s in seen]

    pad = np.pad(highpass_16k(x), (4800, 4800), mode="reflect").astype(np.float32)
    raw, t = pyworld.harvest(pad.astype(np.float64), 16000, f0_floor=50, f0_ceil=1100,
                             frame_period=10)  # fmt: skip
    raw = pyworld.stonemask(pad.astype(np.float64), raw, t, 16000)

    def voiced_range(f0):
        f0 = np.asarray(f0[: len(got)], dtype=np.float32)
        return np.where((f0 >= 50) & (f0 <= 1100), f0, 0)

    once = voiced_range(signal.medfilt(raw, 3))
    twice = voiced_range(signal.medfilt(signal.medfilt(raw, 3), 3))
    assert (once > 0).mean() > 0.3 and not np.array_equal(once, twice)  # the check can fail
    np.testing.assert_allclose(got, once, rtol=1e-6)
    # filter_radius ≤ 2: RVC leaves harvest's track as it is
    seen.clear()
    conv.convert(x, replace(opts, filter_radius=2), progress=False)
    np.testing.assert_allclose(seen[0]["pitchf"], voiced_range(raw), rtol=1e-6)
