"""Which oneDNN kernels run here, for benchmark rows: a bf16 figure from AMX kernels says nothing
about a CPU where the same call falls back to emulated bf16 (`avx2`, `avx512_core` ref code).

    python bench/kernels.py      # {"isa": "AVX512", "bf16": {"convolution": "brg_conv_fwd:...
"""

from __future__ import annotations

import json
import os
import tempfile

import torch
import torch.nn.functional as F

KINDS = ("convolution", "deconvolution", "matmul", "inner_product")


def _verbose_lines(fn) -> list[str]:
    """oneDNN's verbose lines printed while `fn` runs (they go to the C stdout, fd 1)."""
    with tempfile.TemporaryFile(mode="w+") as sink:
        saved = os.dup(1)
        try:
            os.dup2(sink.fileno(), 1)
            with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON):
                fn()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        sink.seek(0)
        return [ln for ln in sink.read().splitlines() if ln.startswith("onednn_verbose")]


def onednn_kernels(dtype: torch.dtype = torch.bfloat16) -> dict[str, str]:
    """{primitive kind: oneDNN implementation} for a channels-last conv, a transposed conv and a
    linear layer in `dtype` on the CPU (what the inference networks run once cast)."""
    x = torch.randn(1, 64, 1, 512, dtype=dtype).contiguous(memory_format=torch.channels_last)
    w = torch.randn(64, 64, 1, 3, dtype=dtype).contiguous(memory_format=torch.channels_last)
    lin = torch.randn(64, 64, dtype=dtype)

    def run():
        with torch.inference_mode():
            F.conv2d(x, w, padding=(0, 1))
            F.conv_transpose2d(x, w.transpose(0, 1), stride=(1, 2))
            F.linear(torch.randn(256, 64, dtype=dtype), lin)

    run()  # creation lines on the first call; exec lines every call
    found: dict[str, str] = {}
    for line in _verbose_lines(run):
        fields = line.split(",")
        for i, f in enumerate(fields[:-1]):
            if f in KINDS and "exec" in fields:
                found.setdefault(f, fields[i + 1])
                break
    return found


def kernel_report() -> dict:
    """The ISA torch dispatches to and the oneDNN kernels for bf16 and fp32."""
    return {
        "isa": torch.backends.cpu.get_cpu_capability(),
        "bf16": onednn_kernels(torch.bfloat16),
        "fp32": onednn_kernels(torch.float32),
    }


if __name__ == "__main__":
    print(json.dumps(kernel_report()))
