"""RVC v1 voice models in their own layouts (five upsampling stages at 32k and 48k) convert."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from rvc.infer import ConvertOptions, load_converter
from rvc.infer.run import run
from tests.conftest import compose, write
from tests.infer.conftest import voice16k
from tests.io.conftest import foreign_file, tiny_synth

# configs/v1/<rate>.json: (upsample_rates, upsample_kernel_sizes, hop)
V1 = {32000: ([10, 4, 2, 2, 2], [16, 16, 4, 4, 4], 320),
      48000: ([10, 6, 2, 2, 2], [16, 16, 4, 4, 4], 480)}  # fmt: skip


def save_v1_webui(path, sr: int, use_f0: bool = True):
    """A tiny v1 model as the RVC WebUI writes it: v1 layout, 256-dim features, old keys."""
    net = tiny_synth(sr=sr, use_f0=use_f0, version="v1", layout_version="v1")
    assert net.config[12] == V1[sr][0] and net.config[14] == V1[sr][1]
    keys = {"info": "20epoch", "sr": f"{sr // 1000}k", "f0": int(use_f0), "version": "v1"}
    torch.save(foreign_file(net, **keys), path)
    return path


@pytest.mark.parametrize("sr,use_f0", [(48000, False), (32000, True)])
def test_v1_layout_voice_model_converts(tmp_path, one_thread, sr, use_f0):
    path = save_v1_webui(tmp_path / "v1.pth", sr, use_f0)
    conv = load_converter(path, index=None, f0="pm", embedder="spectral")
    assert conv.sample_rate == sr and conv.embedder.dim == 256
    x = voice16k(1.0)
    y = conv.convert(x, ConvertOptions(), progress=False)
    hop = V1[sr][2]
    # the pipeline's frames (two short of the input's 10 ms frames), each `hop` samples
    assert len(y) % hop == 0 and abs(len(y) - len(x) * sr // 16000) <= 2 * hop
    assert np.isfinite(y).all() and np.abs(y).max() > 0


def test_v1_48k_voice_model_converts_through_infer_py(tmp_path, one_thread):
    path = save_v1_webui(tmp_path / "v1.pth", 48000)
    x = voice16k(1.0)
    src = write(tmp_path / "speech.wav", x, 16000)
    cfg = compose("infer", [f"voice={path}", f"input=[{src}]", f"paths.root={tmp_path}",
                            f"out_dir={tmp_path / 'out'}", "f0=pm", "embedder=spectral"])  # fmt: skip
    res = run(cfg)
    assert not res.failed and len(res.written) == 1
    y, rate = sf.read(res.written[0].output)
    assert rate == 48000 and len(y) % 480 == 0 and abs(len(y) - len(x) * 3) <= 2 * 480
    assert np.abs(y).max() > 0
