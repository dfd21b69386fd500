"""Our conversion equals the RVC WebUI pipeline on the same model, F0, features and index.

The fixtures (`fixtures/`, made by `fixtures/make_reference.py` from the WebUI's own code
outside this repository) hold the WebUI's int16 output for three cases. Both sides use the
same stub embedder and F0 (their README gives the exact formulas) and zeroed noise, so every
difference left is ours: padding, cut points, retrieval, ×2 upsampling, protect, RMS mixing,
resampling and the final scaling.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rvc.embedders.base import Embedder
from rvc.f0.base import F0Estimator
from rvc.index.search import read_index
from rvc.infer import ConvertOptions
from rvc.infer.converter import VoiceConverter
from rvc.io.voice_model import load_voice_model

FIXTURES = Path(__file__).parent / "fixtures"


class StubEmbedder(Embedder):
    """tanh(W · 400-sample frame · 4) every 320 samples, W seeded by the width."""

    name = "stub"

    def __init__(self, dim: int):
        super().__init__()
        self.dim, self.version = dim, "v2" if dim == 768 else "v1"
        self.w = np.random.default_rng(dim).standard_normal((dim, 400)).astype(np.float32) / 20

    def forward(
        self, audio: torch.Tensor, padding_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        x = audio[0].cpu().numpy().astype(np.float32)
        frames = np.stack([x[t * 320 : t * 320 + 400] for t in range(self.n_frames(len(x)))])
        return torch.from_numpy(np.tanh((frames @ self.w.T) * np.float32(4)))[None]


class StubF0(F0Estimator):
    """100 + 600·RMS of each 10 ms frame, 0 below an RMS of 0.02."""

    name = "stub"

    def compute(self, audio: np.ndarray) -> np.ndarray:
        x = np.asarray(audio, dtype=np.float32)
        n = len(x) // 160
        r = np.sqrt(np.mean(x[: n * 160].reshape(n, 160).astype(np.float64) ** 2, axis=1))
        return np.where(r > 0.02, 100 + 600 * r, 0.0).astype(np.float32)


def _case(name: str) -> dict:
    with np.load(FIXTURES / f"{name}.npz", allow_pickle=False) as z:
        return {k: z[k].item() if z[k].ndim == 0 else z[k] for k in z.files}


@pytest.mark.parametrize("name", ["case_f0", "case_f0_protect", "case_nof0"])
def test_equals_the_webui_pipeline(name, quiet):
    c = _case(name)
    with np.load(FIXTURES / "input.npz") as z:
        audio = z["audio16k"]
    vm = load_voice_model(FIXTURES / Path(str(c["model"])).name)
    index = read_index(FIXTURES / Path(str(c["index"])).name)
    conv = VoiceConverter(
        vm, StubEmbedder(vm.text_enc_hidden_dim), StubF0() if vm.use_f0 else None, index
    )
    resample = int(c["resample_sr"])
    opts = ConvertOptions(
        pitch=float(c["f0_up_key"]), index_rate=float(c["index_rate"]), protect=float(c["protect"]),
        rms_mix_rate=float(c["rms_mix_rate"]), speaker=int(c["sid"]),
        output_rate=resample if resample >= 16000 and resample != vm.sample_rate else 0,
        pad_s=float(c["x_pad"]), query_s=float(c["x_query"]), center_s=float(c["x_center"]),
        max_s=float(c["x_max"]), chunk_shapes="exact",  # unpadded, as the WebUI (fixed passes too)
    )  # fmt: skip
    ours = conv.convert(audio, opts, progress=False)
    ref = c["output"].astype(np.int32)
    assert len(ours) == len(ref)
    ours16 = (ours.astype(np.float64) * float(c["max_int16"])).astype(np.int16).astype(np.int32)
    diff = np.abs(ours16 - ref)
    # float error only (ours rounds F0 edits in float64): one 16-bit step at most, >90 % exact
    assert diff.max() <= 1 and (diff == 0).mean() > 0.9, (diff.max(), (diff == 0).mean())
    assert np.abs(ref).max() > 2000  # a real signal, not near-silence
