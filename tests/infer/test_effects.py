"""Effects after conversion: each effect does what it says, bad chains are clear errors
before any work, the empty chain is the identity, and a streamed chain is the whole-file one."""

from __future__ import annotations

import numpy as np
import pytest

from rvc.infer import ConvertOptions
from rvc.infer.effects import EFFECTS, EffectChain, apply_effects, parse_chain

SR = 40000


def tone(freq: float, seconds: float = 1.0, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(SR * seconds)) / SR
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.asarray(x, dtype=np.float64) ** 2)))


def db(ratio: float) -> float:
    return 20 * np.log10(ratio)


def fx(x: np.ndarray, *entries) -> np.ndarray:
    return apply_effects(x, SR, parse_chain(entries))


def middle(x: np.ndarray) -> np.ndarray:  # past the filters' and envelopes' start
    return x[len(x) // 4 : -len(x) // 4]


def test_gain_plus_6_db_doubles_the_rms():
    x = tone(440)
    y = fx(x, {"name": "gain", "gain_db": 20 * np.log10(2)})
    assert rms(y) / rms(x) == pytest.approx(2.0, rel=0.01)


@pytest.mark.parametrize("kind", ["lowpass", "highpass"])
def test_filters_keep_their_band_and_remove_the_other(kind):
    low, high = tone(200), tone(5000)
    # low-pass at 1 kHz keeps 200 Hz, high-pass at 1 kHz keeps 5 kHz
    keep, cut = (low, high) if kind == "lowpass" else (high, low)
    entry = {"name": kind, "cutoff_frequency_hz": 1000}
    assert abs(db(rms(middle(fx(keep, entry))) / rms(middle(keep)))) < 1.0
    assert db(rms(middle(fx(cut, entry))) / rms(middle(cut))) < -20


def test_limiter_caps_the_peak_at_its_threshold():
    x = tone(300, amp=0.9)
    y = fx(x, {"name": "limiter", "threshold_db": -6})
    assert np.abs(y).max() <= 10 ** (-6 / 20) * 1.001
    assert np.abs(middle(y)).max() > 10 ** (-6 / 20) * 0.9  # limited, not silenced
    quiet = tone(300, amp=0.3)  # below the threshold: untouched (no make-up gain)
    np.testing.assert_allclose(fx(quiet, {"name": "limiter", "threshold_db": -6}), quiet, atol=1e-4)


def test_reverb_lengthens_the_decay():
    x = np.concatenate([tone(500, 0.3), np.zeros(SR, dtype=np.float32)])
    y = fx(x, {"name": "reverb", "room_size": 0.8})
    after = slice(int(0.4 * SR), int(0.9 * SR))  # 0.1-0.6 s after the input ended
    assert rms(x[after]) == 0 and rms(y[after]) > 0.01 * rms(x[: int(0.3 * SR)])


def test_delay_puts_an_echo_at_the_stated_time():
    x = np.zeros(SR, dtype=np.float32)
    x[1000] = 1.0
    y = fx(x, {"name": "delay", "delay_seconds": 0.2, "feedback": 0.0, "mix": 0.5})
    late = np.abs(y[2000:])
    assert 2000 + int(np.argmax(late)) == pytest.approx(1000 + 0.2 * SR, abs=2)
    assert late.max() > 0.3  # the echo is there, half the mix


def test_compressor_lowers_the_loud_part():
    x = np.concatenate([tone(300, 0.5, amp=0.02), tone(300, 0.5, amp=0.8)])
    y = fx(x, {"name": "compressor", "threshold_db": -20, "ratio": 8, "attack_ms": 1})
    quiet, loud = slice(SR // 10, SR // 2), slice(SR // 2 + SR // 10, SR)
    assert abs(db(rms(y[quiet]) / rms(x[quiet]))) < 1.0  # below threshold: untouched
    assert db(rms(y[loud]) / rms(x[loud])) < -10


def test_chorus_changes_the_signal_and_keeps_its_level():
    x = tone(440, 2.0)
    y = fx(x, {"name": "chorus", "depth": 0.5, "mix": 0.5})
    assert np.abs(y - x).max() > 0.05
    assert abs(db(rms(middle(y)) / rms(middle(x)))) < 3.0


def test_the_empty_chain_is_the_identity():
    x = tone(440)
    assert fx(x) is not None and np.array_equal(fx(x), x)
    assert ConvertOptions().effects == () and ConvertOptions(effects=[]).effects == ()


@pytest.mark.parametrize(
    "entries,words",
    [
        ([{"name": "flanger"}], ["unknown effect 'flanger'", "chorus", "reverb"]),
        ([{"name": "reverb", "size": 1}], ["effects[0] (reverb)", "size", "room_size"]),
        ([{"name": "gain"}, {"name": "gain", "gain_db": "loud"}], ["effects[1]", "number"]),
        ([{"name": "reverb", "room_size": 3}], ["effects[0] (reverb)", "between 0.0 and 1.0"]),
        ({"name": "reverb"}, ["list of entries"]),
    ],
)
def test_a_bad_chain_is_a_one_line_error_when_the_options_are_built(entries, words):
    with pytest.raises(ValueError) as e:
        ConvertOptions(effects=entries)
    msg = str(e.value)
    assert "\n" not in msg and all(w in msg for w in words), msg


def test_every_effect_has_defaults_that_build():
    chain = parse_chain(list(EFFECTS))  # bare names: every parameter at its default
    y = apply_effects(tone(440, 0.5), SR, chain)
    assert len(chain) == len(EFFECTS) and np.isfinite(y).all()


@pytest.mark.parametrize("block", [SR // 4, 4321])
def test_streamed_chain_equals_the_whole_file_chain(block):
    """Reverb tails and echoes carry across block boundaries (pedalboard's reset=False)."""
    rng = np.random.default_rng(0)
    x = np.concatenate([0.2 * rng.standard_normal(SR).astype(np.float32), np.zeros(SR, np.float32)])
    chain = parse_chain([{"name": "chorus"}, {"name": "delay", "delay_seconds": 0.3},
                         {"name": "reverb", "room_size": 0.7}, {"name": "compressor"},
                         {"name": "highpass"}, {"name": "lowpass"}, {"name": "gain", "gain_db": 2},
                         {"name": "limiter"}])  # fmt: skip
    whole = apply_effects(x, SR, chain)
    live = EffectChain(chain, SR)
    streamed = np.concatenate([live(x[i : i + block]) for i in range(0, len(x), block)])
    assert streamed.shape == whole.shape
    np.testing.assert_allclose(streamed, whole, atol=1e-5)
    assert rms(streamed[SR + SR // 2 :]) > 1e-3  # the tail past the input is in the blocks
