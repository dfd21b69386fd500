"""RMVPE: network layout vs the published rmvpe.pt, weight loading, decoding, frames, batching."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rvc.f0.rmvpe import RMVPEEstimator
from rvc.f0.rmvpe_net import (
    CENTS_OFFSET,
    RMVPEMel,
    RMVPENet,
    pad_time,
    salience_to_f0,
)
from rvc.utils.hub import MissingModelFileError

# Facts about the published rmvpe.pt (RVC's E2E(4, 1, (2, 2))): 741 state-dict entries
# (incl. BatchNorm buffers), 90,423,165 trainable parameters, and these names / shapes.
PUBLISHED_SHAPES = {
    "unet.encoder.bn.weight": (1,),
    "unet.encoder.layers.0.conv.0.conv.0.weight": (16, 1, 3, 3),
    "unet.encoder.layers.0.conv.0.shortcut.weight": (16, 1, 1, 1),
    "unet.encoder.layers.0.conv.3.conv.4.running_var": (16,),
    "unet.encoder.layers.4.conv.0.conv.3.weight": (256, 256, 3, 3),
    "unet.intermediate.layers.0.conv.0.shortcut.weight": (512, 256, 1, 1),
    "unet.intermediate.layers.3.conv.3.conv.4.weight": (512,),
    "unet.decoder.layers.0.conv1.0.weight": (512, 256, 3, 3),
    "unet.decoder.layers.0.conv2.0.conv.0.weight": (256, 512, 3, 3),
    "unet.decoder.layers.4.conv1.1.num_batches_tracked": (),
    "unet.decoder.layers.4.conv2.3.conv.3.weight": (16, 16, 3, 3),
    "cnn.weight": (3, 16, 3, 3),
    "fc.0.gru.weight_ih_l0": (768, 384),
    "fc.0.gru.weight_hh_l0_reverse": (768, 256),
    "fc.1.weight": (360, 512),
    "fc.1.bias": (360,),
}


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory) -> str:
    """Random full-size RMVPE weights saved like the published file (fp16 state dict)."""
    torch.manual_seed(0)
    net = RMVPENet()
    with torch.no_grad():  # non-trivial BatchNorm statistics, so loading them matters
        for name, buf in net.named_buffers():
            if name.endswith("running_mean"):
                buf.normal_(0, 0.1)
            elif name.endswith("running_var"):
                buf.uniform_(0.5, 1.5)
    state = {k: v.half() if v.is_floating_point() else v for k, v in net.state_dict().items()}
    path = tmp_path_factory.mktemp("rmvpe") / "rmvpe.pt"
    torch.save(state, path)
    return str(path)


@pytest.fixture(scope="module")
def estimator(weights_file) -> RMVPEEstimator:
    # threshold 0: with random weights every frame counts as voiced, so values are compared
    return RMVPEEstimator(model_path=weights_file, threshold=0.0, f0_min=0.0, f0_max=1e5)


def test_layout_matches_published_rmvpe():
    net = RMVPENet()
    sd = net.state_dict()
    assert len(sd) == 741
    assert sum(p.numel() for p in net.parameters()) == 90_423_165
    for name, shape in PUBLISHED_SHAPES.items():
        assert tuple(sd[name].shape) == shape, name


def test_loads_saved_weights_and_frame_count(estimator, weights_file):
    net = estimator.load()  # batch norms folded into the convs: compare what it computes
    plain = RMVPENet().eval()
    plain.load_state_dict(torch.load(weights_file, weights_only=True))
    mel = torch.randn(1, 128, 64)
    with torch.inference_mode():
        torch.testing.assert_close(net(mel), plain(mel), rtol=1e-4, atol=1e-5)
    rng = np.random.default_rng(0)
    for length in (161, 3201):
        audio = (0.1 * rng.standard_normal(length)).astype(np.float32)
        f0 = estimator.compute(audio)
        assert f0.shape == (length // 160,) and f0.dtype == np.float32
        assert np.isfinite(f0).all() and (f0 > 0).all()
    assert estimator.compute(np.zeros(159, dtype=np.float32)).shape == (0,)


def test_salience_shape(estimator):
    sal = estimator.salience(torch.zeros(2, 4000))
    assert sal.shape == (2, 4000 // 160 + 1, 360)
    assert (sal >= 0).all() and (sal <= 1).all()


def test_batch_equals_single(estimator):
    rng = np.random.default_rng(1)
    a, b = (0.1 * rng.standard_normal((2, 4001))).astype(np.float32)
    c = (0.1 * rng.standard_normal(3333)).astype(np.float32)
    clips = [a, c, b]
    for clip, got in zip(clips, estimator.compute_batch(clips), strict=True):
        np.testing.assert_allclose(got, estimator.compute(clip), rtol=1e-4, atol=1e-3)


def test_mel_front_end_frames():
    mel = RMVPEMel()
    for length in (300, 1601, 16000):  # 300: shorter than n_fft/2, zero-padded path
        out = mel(torch.randn(2, length) * 0.1)
        assert out.shape == (2, 128, length // 160 + 1)
        assert torch.isfinite(out).all() and out.min() >= math.log(1e-5) - 1e-4
    for n in (1, 5, 32, 33, 70):
        assert pad_time(torch.zeros(1, 128, n)).shape[-1] == 32 * math.ceil(n / 32)


def test_salience_decoding():
    # a Gaussian bump centred between bins b and b+1 decodes to the cents in between
    bins = torch.arange(360, dtype=torch.float32)
    sal = torch.zeros(1, 4, 360)
    for t, centre in enumerate((10.5, 100.25, 250.0)):
        sal[0, t] = 0.9 * torch.exp(-0.5 * ((bins - centre) / 1.5) ** 2)
    sal[0, 3] = 0.02  # weak everywhere: below threshold 0.03 → unvoiced
    f0 = salience_to_f0(sal, threshold=0.03)[0]
    for t, centre in enumerate((10.5, 100.25, 250.0)):
        want = 10 * 2 ** ((20 * centre + CENTS_OFFSET) / 1200)
        assert abs(1200 * math.log2(f0[t].item() / want)) < 1.0
    assert f0[3] == 0
    # peaks at the range edges stay finite (zero-padded window)
    edge = torch.zeros(1, 2, 360)
    edge[0, 0, 0] = edge[0, 1, 359] = 1.0
    f0 = salience_to_f0(edge)[0]
    assert torch.isfinite(f0).all() and f0[0] < 32 and f0[1] > 1900


def test_missing_weights_without_hub_is_a_clear_error(monkeypatch):
    import huggingface_hub

    calls = []

    def offline(*args, **kwargs):
        calls.append((args, kwargs))
        raise OSError("offline (test)")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    est = RMVPEEstimator()
    assert calls == []  # construction never looks for the file
    with pytest.raises(MissingModelFileError, match="rmvpe.pt"):
        est.compute(np.zeros(1600, dtype=np.float32))
    assert calls, "the hub was not consulted"


def test_missing_local_file(tmp_path):
    with pytest.raises(MissingModelFileError, match="rmvpe.pt"):
        RMVPEEstimator(model_path=tmp_path / "rmvpe.pt").load()


def test_bad_weight_file_names_the_file(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_text("not a checkpoint")
    with pytest.raises(ValueError, match="junk.pt"):
        RMVPEEstimator(model_path=junk).load()
    wrong = tmp_path / "wrong.pt"
    torch.save({"fc.1.weight": torch.zeros(3, 3)}, wrong)
    with pytest.raises(ValueError, match="wrong.pt"):
        RMVPEEstimator(model_path=wrong).load()
