"""The Embedder contract: `embed_batch` pads, masks, trims to `n_frames` and checks its input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rvc.embedders.base import Embedder, conv_frames
from rvc.embedders.spectral import SpectralEmbedder


class _MaskSpy(Embedder):
    """Frame t = mean of its 400-sample window, in `dim` copies; records what it was given."""

    name, dim = "spy", 4

    def __init__(self):
        super().__init__()
        self.seen: list[tuple[torch.Tensor, torch.Tensor | None]] = []

    def forward(self, audio, padding_mask=None):
        lengths = self.check_input(audio, padding_mask)
        self.seen.append((audio.clone(), None if padding_mask is None else padding_mask.clone()))
        frames = audio.unfold(-1, 400, 320).mean(-1)  # [B, F]
        valid = (
            torch.arange(frames.shape[1])[None]
            < torch.tensor([self.n_frames(int(n)) for n in lengths])[:, None]
        )
        return (frames * valid)[..., None].repeat(1, 1, self.dim)


def test_embed_batch_pads_masks_and_trims_each_clip():
    rng = np.random.default_rng(0)
    clips = [rng.standard_normal(n).astype(np.float32) for n in (1_000, 3_217, 2_400)]
    spy = _MaskSpy()
    out = spy.embed_batch(clips)
    ((audio, mask),) = spy.seen
    assert audio.shape == (3, 3_217) and mask.shape == (3, 3_217)
    for i, c in enumerate(clips):
        assert (~mask[i]).sum() == len(c) and not mask[i, : len(c)].any()
        assert torch.equal(audio[i, : len(c)], torch.from_numpy(c))
        assert not audio[i, len(c) :].any()  # padded with zeros
        assert out[i].shape == (conv_frames(len(c)), 4) and out[i].dtype == np.float32
        np.testing.assert_allclose(out[i], spy.embed(c), rtol=1e-6)
    spy.seen.clear()
    spy.embed_batch(clips[:1])
    assert spy.seen[0][1] is None  # nothing padded: no mask
    spy.embed_batch(clips[:1], length=1_600)
    assert spy.seen[1][0].shape == (1, 1_600) and spy.seen[1][1][0, 1_000:].all()


def test_spectral_batch_equals_each_clip_alone():
    emb = SpectralEmbedder()
    rng = np.random.default_rng(1)
    clips = [0.3 * rng.standard_normal(n).astype(np.float32) for n in (800, 5_000, 4_321)]
    for c, f in zip(clips, emb.embed_batch(clips), strict=True):
        assert f.shape == (emb.n_frames(len(c)), 768)
        np.testing.assert_allclose(f, emb.embed(c), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "clips,length,match",
    [
        ([np.zeros((2, 800))], None, r"clip 0 must be mono"),
        ([np.zeros(800), np.array(["a"] * 800)], None, r"clip 1 must be mono numeric"),
        ([np.zeros(800)], 400, r"length 400 < longest clip \(800\)"),
        ([np.zeros(399)], None, r"audio too short \(399 samples\)"),
        ([np.full(800, np.nan)], None, r"audio contains NaN/Inf"),
    ],
)
def test_embed_batch_refuses_bad_input_clearly(clips, length, match):
    with pytest.raises(ValueError, match=rf"embedder 'spectral': {match}"):
        SpectralEmbedder().embed_batch(clips, length=length)


def test_the_family_contract():
    assert SpectralEmbedder().load() is not None and not SpectralEmbedder.has_v1_layer
    from rvc.embedders.hubert import HubertEmbedder

    assert HubertEmbedder.has_v1_layer
    assert SpectralEmbedder().embed_batch([]) == []
