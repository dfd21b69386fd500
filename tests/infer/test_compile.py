"""`device.compile` in conversion: the vocoder runs through torch.compile with the same output,
without graph breaks, and inputs of other lengths reuse a dynamic graph instead of failing."""

from __future__ import annotations

import numpy as np
import torch

from tests.infer.conftest import voice16k


def test_compiled_vocoder_converts_like_eager(voice_files, quiet):
    from torch._dynamo.utils import counters

    from rvc.infer import ConvertOptions, load_converter

    opts = ConvertOptions(index_rate=0.0)
    eager = load_converter(voice_files / "v.pth", index=None, f0="pm")
    compiled = load_converter(voice_files / "v.pth", index=None, f0="pm", compile="eager")
    torch._dynamo.reset()
    counters.clear()
    for seconds in (1.5, 2.5, 3.5):  # three chunk lengths (one chunk each)
        audio = voice16k(seconds, seed=int(seconds * 10))
        ref = eager.convert(audio, opts, progress=False)
        out = compiled.convert(audio, opts, progress=False)
        np.testing.assert_allclose(out, ref, rtol=0, atol=1e-5)
    assert not counters["graph_break"], dict(counters["graph_break"])
    # the first length static, the second makes it dynamic, the third reuses that graph
    assert counters["stats"]["unique_graphs"] <= 2
