"""`device.inference_precision`: the F0 and content models cast to bf16 once stay within stated
bounds of fp32 (F0 in cents and voicing; features by cosine and relative error), mels and
decoding stay fp32, and a bad value is a clear error before any work."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rvc.demo.voice import synthesize_utterance
from rvc.utils.device import fast_bf16, inference_dtype
from tests.conftest import compose
from tests.embedders.conftest import HIDDEN, save_tiny

BF16 = torch.bfloat16


@pytest.fixture(scope="module")
def voice() -> np.ndarray:
    audio, _ = synthesize_utterance(np.random.default_rng(3), 16000, duration=2.5)
    return (0.8 * audio / np.abs(audio).max()).astype(np.float32)


def _f0_error(make, audio: np.ndarray) -> tuple[float, np.ndarray]:
    """(share of frames whose voicing agrees, |cents| on frames voiced in both) bf16 vs fp32,
    `make()` building a fresh estimator for each."""
    ref = make().compute(audio)
    low = make().cast(BF16).compute(audio)
    assert low.dtype == np.float32 and low.shape == ref.shape
    both = (ref > 0) & (low > 0)
    assert both.mean() > 0.3, "the synthetic voice has voiced stretches"
    return ((ref > 0) == (low > 0)).mean(), np.abs(1200 * np.log2(low[both] / ref[both]))


def test_precision_values():
    assert inference_dtype("fp32", "cpu") is None
    assert inference_dtype("bf16", "cpu") is BF16
    assert inference_dtype("fp16", "cpu") is torch.float16
    assert inference_dtype("auto", "cpu") is (BF16 if fast_bf16("cpu") else None)
    with pytest.raises(ValueError, match="inference_precision.*'fp8'"):
        inference_dtype("fp8", "cpu")


def test_fcpe_bf16_within_15_cents_of_fp32(voice):
    # FCPE's real (bundled) weights; measured here: median 6, p95 11 cents, 99.8 % voicing agree
    from rvc.f0.fcpe import FCPEEstimator

    agree, cents = _f0_error(FCPEEstimator, voice)
    assert agree >= 0.99
    assert np.median(cents) < 10 and np.percentile(cents, 95) < 20


def test_crepe_tiny_bf16_within_5_cents_of_fp32(voice):
    # decoding runs in fp32 (it once handed numpy a bf16 tensor)
    from rvc.f0.crepe import CrepeEstimator

    agree, cents = _f0_error(lambda: CrepeEstimator(model="tiny"), voice[:16000])
    assert agree >= 0.99
    assert np.percentile(cents, 95) < 5


def test_rmvpe_mel_stays_fp32_when_the_network_is_bf16(voice):
    from rvc.f0.rmvpe import RMVPEEstimator
    from rvc.f0.rmvpe_net import RMVPEMel

    class Head(torch.nn.Module):  # a stand-in for the (slow on CPU) U-Net: one linear layer
        def __init__(self):
            super().__init__()
            self.proj = torch.nn.Linear(128, 360)

        def forward(self, mel):  # [B, 128, N] -> [B, N, 360]
            return torch.sigmoid(self.proj(mel.transpose(1, 2)))

    est = RMVPEEstimator()
    est._net, est._mel = Head().eval(), RMVPEMel().eval()
    seen, heard = [], []
    est._mel.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    est._net.proj.register_forward_hook(lambda m, i, o: heard.append(o.dtype))
    x = torch.from_numpy(voice[:16000])[None]
    ref = est.salience(x)
    low = est.cast(BF16).salience(x)
    assert seen == [torch.float32, torch.float32]  # the log-mel: fp32 both times
    assert heard == [torch.float32, BF16]  # the network: bf16 once cast
    assert low.dtype == torch.float32  # salience handed to decoding in fp32
    assert (low - ref).abs().max() < 0.02


def test_hubert_bf16_features_within_3_percent_of_fp32(tmp_path, voice):
    from rvc.embedders.hubert import HubertEmbedder

    save_tiny(tmp_path, final_proj=False, fmt="safetensors")

    def make():
        return HubertEmbedder(local_path=tmp_path, weights="model.safetensors", dim=HIDDEN).load()

    x = torch.from_numpy(voice)[None]
    ref = make()(x)
    low = make().cast(BF16)(x).float()
    # What users get from a real-size HuBERT-base in bf16 (measured, AMX and AVX2: cos min 0.9998,
    # rel 0.016).
    # The tiny model errs alike on every CPU (AMX, AVX-512-bf16 and AVX2-emulated, 1 or 2
    # threads: cos min 0.9995, mean 0.9999, rel 0.014): its pos_conv has 16 channels per group,
    # as real ones have >= 16 (test_bf16_kernels.py: oneDNN's AMX kernel is wrong below that)
    cos = torch.nn.functional.cosine_similarity(ref, low, dim=-1)
    assert cos.min() > 0.999
    assert (ref - low).norm() / ref.norm() < 0.03


def _run(tmp_path: Path, voice_dir: Path, hubert: Path, *extra: str):
    from rvc.extract.run import run

    cfg = compose(
        "extract",
        ["name=t", f"paths.root={tmp_path}", f"inputs=[{voice_dir}]", "f0=pm", "embedder=custom",
         f"embedder.local_path={hubert}", "embedder.weights=model.safetensors",
         f"embedder.dim={HIDDEN}", "device.num_workers=1", *extra],
    )  # fmt: skip
    return run(cfg)


@pytest.fixture
def inputs(tmp_path, voice) -> tuple[Path, Path]:
    import soundfile as sf

    (tmp_path / "in").mkdir()
    sf.write(tmp_path / "in" / "a.wav", np.tile(voice, 2), 16000)
    save_tiny(tmp_path / "hubert", final_proj=False, fmt="safetensors")
    return tmp_path / "in", tmp_path / "hubert"


def test_extraction_in_bf16_is_close_to_fp32(tmp_path, inputs):
    # the stored features of a whole extraction (slicing, batching, padding, fp16 storage) keep
    # the embedder's bf16 error: 3 % relative, as the model alone above
    ref = _run(tmp_path / "fp32", *inputs).store
    low = _run(tmp_path / "bf16", *inputs, "device.inference_precision=bf16").store
    assert sorted(ref.slices) == sorted(low.slices) and ref.slices
    for name, rec in ref.slices.items():
        fa = np.load(ref.path("features", rec)).astype(np.float32)
        fb = np.load(low.path("features", low.slices[name])).astype(np.float32)
        assert fa.shape == fb.shape and np.isfinite(fb).all()
        assert np.linalg.norm(fa - fb) / np.linalg.norm(fa) < 0.03
    mute_a, mute_b = np.load(ref.mute_path()), np.load(low.mute_path())
    assert np.abs(mute_a.astype(np.float32) - mute_b).max() < 0.1


def test_bad_precision_fails_before_slicing(tmp_path, inputs):
    from rvc.extract.run import ExtractError

    with pytest.raises(ExtractError, match="inference_precision.*'half'"):
        _run(tmp_path / "x", *inputs, "device.inference_precision=half")
    assert not (tmp_path / "x").exists()  # nothing sliced, no store
