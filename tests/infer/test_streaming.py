"""Live conversion (`rvc.infer.streaming`): streamed blocks equal offline conversion away from
the seams, knobs change between blocks, silence and bad blocks, the F0 cache, fixed shapes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rvc.infer import ConvertOptions
from rvc.infer.converter import VoiceConverter
from rvc.infer.streaming import StreamingConverter, StreamOptions, convert_stream
from tests.infer.conftest import converter, voice16k

# the test voice's pauses are a -80 dB noise floor, which RVC's -60 dB input gate mutes; the
# tiny random model is loud even on that floor, so gating would differ from offline there
UNGATED = -120.0
OPTS = ConvertOptions(index_rate=0.0)


def _stream(conv, block_s: float, **kw) -> StreamingConverter:
    return StreamingConverter(
        conv, OPTS, StreamOptions(block_s=block_s, threshold_db=UNGATED, **kw)
    )


@pytest.mark.parametrize("block_s", [0.1, 0.25, 0.5])
def test_streamed_equals_offline_away_from_seams(voice_files, quiet, block_s):
    conv = converter(voice_files, index=None)
    x = voice16k(8.0)
    offline = conv.convert(x, OPTS, progress=False)
    stream = _stream(conv, block_s)
    live = convert_stream(stream, x)
    assert len(live) == len(x) * 40000 // 16000  # the input's length, the delay removed
    n = min(len(live), len(offline)) - 40000  # the offline path's last frames are padded
    # the first second: the stream's window starts empty where offline reflects the input
    a, b = offline[40000:n], live[40000:n]
    # measured 0.9992-0.9999 (pm, fcpe): the NSF phase carries across blocks, so no SOLA jitter
    assert np.corrcoef(a, b)[0, 1] > 0.95
    steps = np.abs(np.diff(live[40000:n]))
    typical = np.percentile(steps, 99.9)
    hop = int(block_s * 40000)
    for s in range(hop, n - 40000, hop):  # no click at a seam: the bound of offline chunking
        assert steps[s - 3 : s + 3].max() <= typical * 1.5, s
    assert stream.stats.bad_blocks == 0 and len(stream.stats.compute_s) >= 8.0 / block_s


def test_pitch_changed_mid_stream_takes_effect_at_the_next_block(voice_files, monkeypatch):
    conv = converter(voice_files, index=None)
    seen = []
    synth = VoiceConverter._synthesize

    def spy(self, feats, pitchf, n, frames, sid, decode=None):
        seen.append(pitchf[-12:-2].copy())  # the newest block (pm leaves the last 2 unvoiced)
        return synth(self, feats, pitchf, n, frames, sid, decode)

    monkeypatch.setattr(VoiceConverter, "_synthesize", spy)
    stream = _stream(conv, 0.25)
    x = voice16k(3.0)
    block = stream.block_samples
    for i in range(4):
        stream.push(x[i * block : (i + 1) * block])
    stream.set_options(pitch=12)
    stream.push(x[4 * block : 5 * block])
    before, after = seen[3], seen[4]
    assert (before > 100).all() and (after > 2 * 100).all()
    assert np.median(after) == pytest.approx(2 * np.median(before), rel=0.1)
    with pytest.raises(ValueError, match="pitch"):
        stream.set_options(pitch=99)


def test_silence_in_gives_silence_out_without_running_the_networks(voice_files, monkeypatch):
    conv = converter(voice_files, index=None)
    monkeypatch.setattr(StreamingConverter, "_convert_window", lambda self: 1 / 0)
    stream = StreamingConverter(conv, OPTS, StreamOptions(block_s=0.1))
    quiet_noise = 1e-5 * np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    out = convert_stream(stream, quiet_noise)
    assert len(out) == 40000 and not out.any()
    assert stream.stats.silent_blocks == len(stream.stats.compute_s) > 0


def test_nan_and_empty_blocks_are_reported_and_the_stream_goes_on(voice_files, caplog):
    conv = converter(voice_files, index=None)
    stream = _stream(conv, 0.1)
    x = voice16k(1.0)
    assert stream.push(np.zeros(0, dtype=np.float32)).shape == (0,)
    bad = x[:1600].copy()
    bad[100:200] = np.nan
    first = stream.push(bad)
    rest = stream.push(x[1600:3200])
    assert stream.stats.bad_blocks == 1 and "NaN/Inf" in caplog.text
    assert len(first) == len(rest) == 4000 and np.isfinite(first).all() and np.isfinite(rest).all()


def test_f0_cache_matches_estimating_the_whole_window(voice_files):
    conv = converter(voice_files, index=None)
    stream = _stream(conv, 0.1)
    x = voice16k(4.0)
    for i in range(0, 40 * stream.block_samples, stream.block_samples):
        stream.push(x[i : i + stream.block_samples])
    whole = conv.f0.for_conversion(stream.window, 3)
    cached = stream.f0_raw
    provisional = stream.redo  # re-estimated next block, once audio follows them
    both = (whole > 0) & (cached > 0)
    both[-provisional:] = False
    assert both.mean() > 0.5
    # pm on 0.2 s spans vs the whole window: within 1 % on frames both call voiced
    np.testing.assert_allclose(cached[both], whole[both], rtol=0.01)
    # and they agree on what is voiced, but for a frame or two at each onset
    assert ((whole > 0) != (cached > 0))[:-provisional].sum() <= 6


def test_every_network_sees_one_shape_and_nothing_is_reloaded(voice_files, monkeypatch):
    from rvc.embedders.base import Embedder

    conv = converter(voice_files, index=None, f0="fcpe")
    loads = []
    monkeypatch.setattr(Embedder, "load", lambda self: loads.append(self) or self)
    shapes: dict[str, set] = {"embedder": set(), "f0": set(), "vocoder": set(), "encoder": set()}

    def watch(name):
        return lambda mod, args: shapes[name].add(
            tuple(a.shape for a in args if torch.is_tensor(a))
        )

    conv.embedder.register_forward_pre_hook(watch("embedder"))
    conv.f0.networks()[0].register_forward_pre_hook(watch("f0"))
    conv.voice.synthesizer.dec.register_forward_pre_hook(watch("vocoder"))
    conv.voice.synthesizer.enc_p.register_forward_pre_hook(watch("encoder"))
    stream = _stream(conv, 0.25)
    x = voice16k(3.0)
    convert_stream(stream, x, block=1234)  # pushes of any length: whole blocks are converted
    assert not loads and len(stream.stats.compute_s) >= 9  # 2.2 s of voice + the flush
    assert all(len(s) == 1 for s in shapes.values()), shapes


def test_latency_and_options_are_stated(voice_files):
    conv = converter(voice_files, index=None)
    stream = StreamingConverter(conv, OPTS, StreamOptions(block_s=0.25, crossfade_s=0.05))
    assert stream.latency_s == pytest.approx(0.25 + 0.05 + 0.01)
    assert stream.delay_samples == (5 + 1) * 400
    for bad in ({"block_s": 0.001}, {"block_s": 2.0}, {"crossfade_s": 0.0},
                {"block_s": 0.1, "crossfade_s": 0.2}, {"extra_s": -1}):  # fmt: skip
        with pytest.raises(ValueError):
            StreamOptions(**bad)
    with pytest.raises(ValueError, match="cuda_graphs needs a CUDA device"):
        StreamingConverter(conv, OPTS, StreamOptions(cuda_graphs=True))


@pytest.mark.parametrize("context_s", [1.0, 10.0])
def test_feature_cache_against_embedding_the_whole_window(voice_files, tmp_path, context_s):
    from rvc.embedders.hubert import HubertEmbedder
    from rvc.infer.blocks import to_frames
    from tests.embedders.conftest import HIDDEN, save_tiny

    save_tiny(tmp_path, final_proj=False, fmt="safetensors")
    hubert = HubertEmbedder(local_path=tmp_path, weights="model.safetensors", dim=HIDDEN).load()
    stream = _stream(converter(voice_files, index=None), 0.1, embed_context_s=context_s)
    stream.conv = type("C", (), {"embedder": hubert, "index": None})()  # features only
    x = voice16k(5.0)
    for i in range(0, 40 * stream.block_samples, stream.block_samples):
        stream._shift_in(x[i : i + stream.block_samples])
        cached = stream._features()
    whole = to_frames(hubert.embed(stream.window), stream.frames)
    if context_s >= stream.stream.extra_s:  # the whole window every block: nothing cached
        np.testing.assert_array_equal(cached, whole)
        return
    assert stream.embedded < stream.frames
    cos = np.sum(cached * whole, 1) / np.linalg.norm(cached, axis=1) / np.linalg.norm(whole, axis=1)
    # frames from the cache saw 1 s of past and ≥ 60 ms of future instead of the whole window
    # (a random tiny HuBERT, whose attention mixes more than a trained one's): cosine to
    # the whole window's, measured median 0.997, 5th percentile 0.961, lowest 0.907
    assert np.median(cos) > 0.99 and cos.min() > 0.85, (np.median(cos), cos.min())


def test_rms_mix_rate_gives_the_output_the_inputs_loudness_block_by_block(voice_files, quiet):
    conv = converter(voice_files, index=None)
    x = voice16k(4.0)
    x[len(x) // 2 :] *= 0.25  # the second half 12 dB quieter
    louder = []
    for rate in (1.0, 0.0):
        stream = StreamingConverter(
            conv, ConvertOptions(index_rate=0.0, rms_mix_rate=rate),
            StreamOptions(block_s=0.25, threshold_db=UNGATED),
        )  # fmt: skip
        y = convert_stream(stream, x)
        h = len(y) // 2
        voiced = [np.sqrt(np.mean(part[np.abs(part) > 1e-3] ** 2)) for part in (y[:h], y[h:])]
        louder.append(voiced[0] / voiced[1])
    # rate 1: the model's own loudness, whatever the input's; rate 0: the input's envelope
    # (measured 1.01 and 3.98: the input's 4x)
    assert louder[0] < 1.2 and louder[1] == pytest.approx(4.0, rel=0.15), louder


def test_effects_per_block_equal_the_chain_on_the_whole_stream(voice_files, quiet):
    """Live effects keep their state across blocks: a reverb and an echo streamed through
    0.25 s blocks give what the chain gives on the stream's whole output."""
    from rvc.infer.effects import apply_effects

    conv = converter(voice_files, index=None)
    x = voice16k(3.0)
    chain = [{"name": "delay", "delay_seconds": 0.3, "feedback": 0.3},
             {"name": "reverb", "room_size": 0.7}, {"name": "gain", "gain_db": -6}]  # fmt: skip
    raw = []
    for opts in (OPTS, OPTS.with_(effects=chain)):
        stream = StreamingConverter(conv, opts, StreamOptions(block_s=0.25, threshold_db=UNGATED))
        raw.append(np.concatenate([stream.push(x), stream.flush()]))
    dry, wet = raw
    whole = np.clip(apply_effects(dry, conv.sample_rate, OPTS.with_(effects=chain).effects), -1, 1)
    assert wet.shape == dry.shape and np.abs(wet - dry).max() > 0.01
    np.testing.assert_allclose(wet, whole, atol=1e-4)


def test_formant_in_a_stream_adds_its_latency_and_follows_offline(voice_files, quiet):
    conv = converter(voice_files, index=None)
    x = voice16k(4.0)
    opts = OPTS.with_(formant=3.0)
    plain = StreamingConverter(conv, OPTS, StreamOptions(block_s=0.25))
    stream = StreamingConverter(conv, opts, StreamOptions(block_s=0.25, threshold_db=UNGATED))
    assert stream.latency_s == pytest.approx(plain.latency_s + 0.05)  # the shifter's 50 ms
    assert stream.delay_samples == plain.delay_samples + 5 * conv.hop
    live = convert_stream(stream, x)
    offline = conv.convert(x, opts, progress=False)
    assert len(live) == len(x) * 40000 // 16000
    n = min(len(live), len(offline)) - 40000
    # aligned with the offline shift (the delay taken off): as close as without a shift
    assert np.corrcoef(offline[40000:n], live[40000:n])[0, 1] > 0.95
    stream.set_options(formant=-2.0)  # between shifts: same latency, next block on
    with pytest.raises(ValueError, match="started without a formant shift"):
        plain.set_options(formant=2.0)
