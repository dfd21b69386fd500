"""A new F0 method is two files (module + YAML), and it goes through every stage."""

from __future__ import annotations

import numpy as np

from tests.toy_recipe import add_option, extract_train_convert

MODULE = '''
    """A toy F0 method: the autocorrelation peak of each 10 ms frame (numpy only)."""

    import numpy as np

    from rvc.f0.base import HOP, SAMPLE_RATE, F0Estimator, n_frames

    WIN = 1024


    class ToyPitch(F0Estimator):
        name = "toy_pitch"

        def __init__(self, f0_min=50.0, f0_max=1100.0, device="cpu", threshold=0.5):
            super().__init__(f0_min=f0_min, f0_max=f0_max, device=device)
            self.threshold = threshold

        def compute(self, audio):
            x = np.asarray(audio, dtype=np.float64)
            n = n_frames(len(x))
            if n == 0:
                return np.zeros(0, dtype=np.float32)
            padded = np.pad(x, (WIN // 2, WIN // 2))
            frames = np.lib.stride_tricks.sliding_window_view(padded, WIN)[::HOP][:n]
            frames = frames - frames.mean(-1, keepdims=True)
            ac = np.fft.irfft(np.abs(np.fft.rfft(frames, 2 * WIN)) ** 2)[:, :WIN]  # [n, lag]
            lo, hi = int(SAMPLE_RATE / self.f0_max), int(SAMPLE_RATE / self.f0_min)
            lag = lo + ac[:, lo:hi].argmax(-1)
            peak = ac[np.arange(n), lag] / np.maximum(ac[:, 0], 1e-12)
            voiced = (peak > self.threshold) & (ac[:, 0] > 1e-4)
            return np.where(voiced, SAMPLE_RATE / lag, 0.0).astype(np.float32)
'''

YAML = """
    # A toy F0 method (tests/f0/test_toy_f0.py): autocorrelation per 10 ms frame.
    _target_: toy_pitch.ToyPitch
    f0_min: 50
    f0_max: 1100
    threshold: 0.5
"""


def test_toy_f0_goes_through_extract_train_export_and_convert(tmp_path, voice_dir, monkeypatch):
    conf = add_option(tmp_path, "f0", "toy_pitch", MODULE, YAML, monkeypatch)
    from rvc.data.store import FeatureStore

    vm, conv, _ = extract_train_convert(tmp_path, voice_dir, conf, "toy_pitch", "spectral")
    assert type(conv.f0).__name__ == "ToyPitch" and vm.use_f0
    store = FeatureStore(tmp_path / "experiments" / "toy")
    assert store.stages["f0"]["config"]["_target_"] == "toy_pitch.ToyPitch"
    f0 = np.concatenate([np.load(store.path("f0", r)) for r in store.slices.values()])
    # the clips are 120, 160 and 210 Hz (±5 %): the toy finds them on voiced frames
    assert (f0 > 0).mean() > 0.3 and 100 < np.median(f0[f0 > 0]) < 230
