"""The CPU bf16 kernels under the shapes our models (and the tiny test stand-ins) run in bf16.

oneDNN 3.10 (torch 2.11) computes grouped convolutions with fewer than 16 input channels per
group wrongly on AMX CPUs (relative error ~1, where rounding gives ~0.002); on AVX2 or
AVX-512-bf16 the same call is right. No shipped model has such a layer, and this test keeps it so:
each shape below, in bf16 (under autocast as training runs it, and cast once in the channels-last
layout as inference runs it), must equal the fp32 convolution of the same bf16-rounded
inputs and weights up to bf16 output rounding, on whatever CPU runs the suite. If a torch
upgrade breaks one of these shapes on some ISA, this fails there (see docs/precision.md).
"""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

# (in, out, kernel, stride, groups, padding, transposed)
SHAPES = {
    "hubert-base pos_conv": (768, 768, 128, 1, 16, 64, False),  # 48 channels per group
    "tiny test hubert pos_conv": (32, 32, 16, 1, 2, 8, False),  # tests/embedders/conftest.py
    "D scale conv 1": (16, 64, 41, 4, 4, 20, False),  # rvc/models/discriminators.py, width 1
    "D scale conv 2": (64, 256, 41, 4, 16, 20, False),
    "D scale conv 4": (1024, 1024, 41, 4, 256, 20, False),
    "fcpe depthwise": (1024, 1024, 31, 1, 1024, 15, False),  # torchfcpe's conformer
    "hifigan 40k ups.0": (512, 256, 20, 10, 1, 5, True),
}


def _rel_error(cin, cout, k, s, g, p, transposed, cast_once: bool = False) -> float:
    torch.manual_seed(0)
    make = torch.nn.ConvTranspose1d if transposed else torch.nn.Conv1d
    conv = make(cin, cout, k, s, padding=p, groups=g)
    x = torch.randn(1, cin, 200)
    fn = F.conv_transpose1d if transposed else F.conv1d
    args = (s, p) + ((0, g) if transposed else (1, g))
    rounded = [t.detach().bfloat16().float() for t in (x, conv.weight, conv.bias)]
    ref = fn(*rounded, *args)  # fp32 arithmetic on exactly the values bf16 sees
    if cast_once:  # inference: bf16 weights, channels-last 2-D kernels (rvc/models/inference.py)
        from rvc.models.inference import for_inference

        net = for_inference(torch.nn.Sequential(conv), torch.bfloat16)
        with torch.inference_mode():
            low = net(x.bfloat16()).float()
    else:  # training: autocast over the [B, C, T] layout
        with torch.no_grad(), torch.autocast("cpu", torch.bfloat16):
            low = conv(x).float()
    return ((low - ref).norm() / ref.norm()).item()


@pytest.mark.parametrize("cast_once", [False, True], ids=["autocast", "cast-once"])
@pytest.mark.parametrize("name", list(SHAPES))
def test_bf16_conv_equals_fp32_on_rounded_inputs(name, cast_once):
    # bf16 output rounding alone gives ~0.002 on every ISA; a wrong kernel gives ~1
    assert _rel_error(*SHAPES[name], cast_once=cast_once) < 0.01, name


def test_cpu_description_names_the_bf16_kind():
    from rvc.utils.device import cpu_description

    amx = "model name\t: Intel(R) Xeon(R)\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16\n"
    avx2 = "model name\t: AMD EPYC 7B13\nflags\t\t: fpu avx2 fma\n"
    assert cpu_description(amx) == "Intel(R) Xeon(R) (AMX, AVX-512-bf16: real bf16)"
    assert cpu_description(avx2) == "AMD EPYC 7B13 (AVX2, no AVX-512-bf16/AMX: bf16 emulated)"
    assert "bf16" in cpu_description() or "ISA unknown" in cpu_description()  # this machine
