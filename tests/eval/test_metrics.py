"""The evaluation metrics on signals whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rvc.demo.voice import synthesize_utterance
from rvc.eval import metrics
from rvc.f0.dsp import PMEstimator


def _voice(seed: int, speaker: int, seconds: float = 4.0) -> np.ndarray:
    audio, _ = synthesize_utterance(np.random.default_rng(seed), 16000, seconds, speaker)
    return audio


def test_speaker_similarity_of_a_voice_with_itself_and_with_others():
    a, same, other = _voice(0, 0), _voice(1, 0), _voice(2, 3)
    assert metrics.speaker_similarity(a, a, 16000) == pytest.approx(1.0, abs=1e-4)
    noise = 0.1 * np.random.default_rng(0).standard_normal(4 * 16000).astype(np.float32)
    s_same = metrics.speaker_similarity(a, same, 16000)
    s_other = metrics.speaker_similarity(a, other, 16000)
    s_noise = metrics.speaker_similarity(a, noise, 16000)
    # another utterance of the same synthetic speaker is closer than another speaker, and noise
    # is far from any voice
    assert s_same > s_other > s_noise and s_same - s_noise > 0.3


def test_f0_rmse_of_an_octave_shift_is_1200_cents_before_compensation():
    sr = 16000
    t = np.arange(2 * sr) / sr
    low = (0.4 * np.sin(2 * np.pi * 140 * t)).astype(np.float32)
    high = (0.4 * np.sin(2 * np.pi * 280 * t)).astype(np.float32)
    pm = PMEstimator()
    f_low, f_high = pm.compute(low), pm.compute(high)
    raw, vuv = metrics.f0_errors(f_low, f_high)
    shifted, _ = metrics.f0_errors(f_low, f_high, semitones=12)
    assert raw == pytest.approx(1200, abs=10) and shifted < 10 and vuv < 0.05
    assert math.isnan(metrics.f0_errors(np.zeros(10), np.zeros(10))[0])


def test_mcd_and_log_mel_are_zero_for_identical_audio_and_grow_with_damage():
    a = _voice(0, 0, 2.0)
    assert (
        metrics.mel_cepstral_distortion(a, a, 16000) == 0.0
        and metrics.log_mel_l1(a, a, 16000) == 0.0
    )
    rng = np.random.default_rng(0)
    light = a + 0.003 * rng.standard_normal(len(a)).astype(np.float32)
    heavy = a + 0.03 * rng.standard_normal(len(a)).astype(np.float32)
    m_light = metrics.mel_cepstral_distortion(a, light, 16000)
    assert 0 < m_light < metrics.mel_cepstral_distortion(a, heavy, 16000)
    assert 0 < metrics.log_mel_l1(a, light, 16000) < metrics.log_mel_l1(a, heavy, 16000)
