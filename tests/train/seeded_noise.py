"""The same noise for two implementations of a training step, whatever order they draw it in.

Inside `SeededNoise(seed)`, `torch.rand`, `torch.randn`, `torch.rand_like` and `torch.randn_like`
return numpy-generated values keyed by (distribution, element count, how many draws of that key
came before): Applio's step and ours then get identical noise for the posterior sample, the NSF
source and the segment starts, even where they draw in another order or shape (Applio's MRF
start phases are `rand(B, dim)`, ours `rand(B, 1, dim)`: same values, reshaped). The torch RNG is
not consulted, so nothing depends on its stream, ISA or version. Used by
`fixtures/make_step_reference.py` (with Applio's code) and `test_step_reference.py` (ours).
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import torch

_KIND = {"rand": "uniform", "rand_like": "uniform", "randn": "normal", "randn_like": "normal"}
_KIND_ID = {"uniform": 0, "normal": 1}


def _shape(size: tuple) -> tuple[int, ...]:
    if len(size) == 1 and isinstance(size[0], (tuple, list, torch.Size)):
        size = tuple(size[0])
    return tuple(int(s) for s in size)


class SeededNoise:
    """Context manager: torch's four random-tensor factories replaced by keyed numpy draws;
    `draws` lists (distribution, numel) in the order they were made."""

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)
        self.counts: Counter = Counter()
        self.draws: list[tuple[str, int]] = []
        self._saved: dict = {}

    def _values(self, kind: str, shape: tuple[int, ...], dtype, device) -> torch.Tensor:
        numel = math.prod(shape)
        k = self.counts[(kind, numel)]
        self.counts[(kind, numel)] += 1
        self.draws.append((kind, numel))
        rng = np.random.default_rng([self.seed, _KIND_ID[kind], numel, k])
        if kind == "uniform":
            values = rng.random(numel, dtype=np.float32)
        else:
            values = rng.standard_normal(numel, dtype=np.float32)
        dtype = dtype or torch.get_default_dtype()
        # a fresh tensor each time: callers write into it (Applio zeroes the fundamental's phase)
        return torch.from_numpy(values).reshape(shape).to(device=device, dtype=dtype)

    def _factory(self, name: str):
        kind = _KIND[name]

        def like(t: torch.Tensor, *, dtype=None, device=None, **kwargs) -> torch.Tensor:
            self._check(name, kwargs)
            return self._values(kind, tuple(t.shape), dtype or t.dtype, device or t.device)

        def sized(*size, dtype=None, device=None, **kwargs) -> torch.Tensor:
            self._check(name, kwargs)
            return self._values(kind, _shape(size), dtype, device or "cpu")

        return like if name.endswith("_like") else sized

    @staticmethod
    def _check(name: str, kwargs: dict) -> None:
        unknown = {k for k, v in kwargs.items() if v not in (None, False)} - {"layout"}
        if unknown:  # a generator or out= would bypass the keyed draws
            raise TypeError(f"SeededNoise: torch.{name} called with unsupported {sorted(unknown)}")

    def __enter__(self) -> SeededNoise:
        for name in _KIND:
            self._saved[name] = getattr(torch, name)
            setattr(torch, name, self._factory(name))
        return self

    def __exit__(self, *exc) -> None:
        for name, fn in self._saved.items():
            setattr(torch, name, fn)
        self._saved.clear()

    def draw_counts(self) -> dict[str, int]:
        """{"uniform:<numel>": n, "normal:<numel>": n}: what was drawn, for comparing two runs."""
        return {f"{kind}:{numel}": n for (kind, numel), n in sorted(self.counts.items())}
