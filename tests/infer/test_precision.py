"""Conversion under `device.inference_precision=bf16`: the same length, and an SNR and a log-mel
distance to the fp32 conversion within stated bounds; a bad value is a clear error before
loading."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rvc.eval.metrics import log_mel_l1
from tests.conftest import compose
from tests.infer.conftest import voice16k


def test_bf16_conversion_stays_close_to_fp32(voice_files, quiet):
    from rvc.infer import ConvertOptions, load_converter

    audio = voice16k(2.5)
    opts = ConvertOptions(index_rate=0.5)
    ref = load_converter(voice_files / "v.pth", f0="pm").convert(audio, opts, progress=False)
    conv = load_converter(voice_files / "v.pth", f0="pm", precision="bf16")
    assert conv.dtype is torch.bfloat16
    dec, seen = conv.voice.synthesizer.dec, {"ups": [], "conv_post": []}
    hooks = [(dec.ups[0] if k == "ups" else dec.conv_post).register_forward_hook(lambda m, i, o, k=k: seen[k].append(o.dtype))
             for k in seen]  # fmt: skip
    low = conv.convert(audio, opts, progress=False)
    for h in hooks:
        h.remove()
    assert set(seen["ups"]) == {torch.bfloat16}  # the vocoder really ran in bf16
    assert set(seen["conv_post"]) == {torch.float32}  # its output layer in fp32
    assert low.dtype == np.float32 and low.shape == ref.shape and np.isfinite(low).all()
    # bf16 rounding adds a white noise floor under the signal: measured 38.0 dB SNR (AMX), as
    # per-call autocast gave on this fixture (37–38 dB, which model draw aside)
    snr = 20 * np.log10(np.linalg.norm(ref) / np.linalg.norm(ref - low))
    assert snr > 35, snr
    # mean |Δ log-mel| (natural log, 80 bands, floor 50 dB under the loudest band): measured
    # 0.024 (autocast: 0.025); pitch +2 semitones on the same tiny model gives 0.031, the same
    # output 0
    assert log_mel_l1(ref, low, conv.sample_rate, floor_db=50) < 0.028
    assert log_mel_l1(ref, ref, conv.sample_rate, floor_db=50) == 0.0


def test_bad_precision_is_refused_before_loading(tmp_path, voice_files):
    from rvc.infer.run import InferError, run

    cfg = compose("infer", [f"voice={voice_files / 'v.pth'}", f"input={tmp_path / 'none.wav'}",
                            f"paths.root={tmp_path}", "f0=pm", "device.inference_precision=half"])  # fmt: skip
    with pytest.raises(InferError, match="inference_precision.*'half'"):
        run(cfg)
