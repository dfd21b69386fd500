"""Blend two voice models: every tensor `(1 - ratio)·a + ratio·b` (`rvc-model blend`).

The same operation as Applio's model blender and the RVC WebUI's checkpoint merge (their
behaviour, not their code): a weighted average of two models of one architecture, written as an
ordinary voice model. Unlike them we refuse parents that differ in anything but the weights
(sample rate, v1/v2, F0, vocoder, the config list, tensor names and shapes, embedder, v1 layer),
since an average of two different networks is not a network of either kind. The sum is taken in
fp32 (the parents are fp16), so ratio 0 and 1 give the parents' tensors back exactly.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from rvc.formats import file_sha256
from rvc.io.safe_load import ModelFileError
from rvc.io.voice_model import VoiceModel, read_voice_model, save_voice_model, weights_sha256


class BlendError(ModelFileError):
    """Two voice models that cannot be blended; the message names both files and the difference."""


def _difference(a: VoiceModel, b: VoiceModel) -> str | None:
    """The first architectural difference between two voice models, in words, or None."""
    for what, x, y in (
        ("sample rate", a.sample_rate, b.sample_rate),
        ("version", a.version, b.version),
        ("F0", "yes" if a.use_f0 else "no", "yes" if b.use_f0 else "no"),
        ("vocoder", a.vocoder, b.vocoder),
    ):
        if x != y:
            return f"{what} {x} vs {y}"
    from rvc.models.synthesizer import CONFIG_KEYS

    for key, x, y in zip(CONFIG_KEYS, a.config, b.config, strict=True):
        # the segment size is a training setting, unused at inference (docs/formats.md §1)
        if key != "segment_size" and _plain(x) != _plain(y):
            return f"config {key} {x} vs {y}"
    only_a, only_b = (
        sorted(set(a.weights) - set(b.weights)),
        sorted(set(b.weights) - set(a.weights)),
    )
    if only_a or only_b:
        which = f"{only_a[0]} only in the first" if only_a else f"{only_b[0]} only in the second"
        return f"tensor names differ ({which})"
    for key in a.weights:
        if a.weights[key].shape != b.weights[key].shape:
            return f"{key} shape {tuple(a.weights[key].shape)} vs {tuple(b.weights[key].shape)}"
    ea, eb = a.metadata.get("embedder_model"), b.metadata.get("embedder_model")
    if ea and eb and ea != eb:  # features of another embedder mean other content inputs
        return f"embedder {ea} vs {eb}"
    if a.version == "v1":
        from rvc.io.v1_layer import file_v1_layer

        la, lb = (
            file_v1_layer(a.metadata, str(a.path))[0],
            file_v1_layer(b.metadata, str(b.path))[0],
        )
        if la != lb:
            return f"v1 HuBERT layer {la} vs {lb}"
    return None


def _plain(value: Any) -> Any:
    # config items compare as data: (3, 7) == [3, 7], "1" == "1"
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def blend_weights(
    a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], ratio: float
) -> dict[str, torch.Tensor]:
    """`(1 - ratio)·a + ratio·b` per tensor, in fp32; non-float tensors must be equal."""
    out = {}
    for key, ta in a.items():
        tb = b[key]
        if ta.is_floating_point():
            out[key] = (1.0 - ratio) * ta.float() + ratio * tb.float()
        elif torch.equal(ta, tb):
            out[key] = ta
        else:
            raise ValueError(f"{key}: integer tensors differ, they cannot be averaged")
    return out


def blend(
    a_path: str | os.PathLike,
    b_path: str | os.PathLike,
    out: str | os.PathLike,
    ratio: float = 0.5,
    name: str | None = None,
    author: str | None = None,
) -> dict[str, Any]:
    """Write `out` = (1 - ratio)·a + ratio·b; returns the written metadata (no weights)."""
    ratio = float(ratio)
    if not 0.0 <= ratio <= 1.0:  # also refuses NaN
        raise ValueError(f"--ratio must be in [0, 1] (0: {a_path}, 1: {b_path}), got {ratio}")
    a, b = read_voice_model(a_path), read_voice_model(b_path)
    diff = _difference(a, b)
    if diff is not None:
        raise BlendError(
            f"cannot blend {a_path} and {b_path}: {diff}; blend needs one architecture"
        )
    try:
        weights = blend_weights(a.weights, b.weights, ratio)
    except ValueError as e:
        raise BlendError(f"cannot blend {a_path} and {b_path}: {e}") from None
    parents = [
        {
            "name": vm.model_name,
            "file": Path(p).name,
            "file_sha256": file_sha256(p),
            "weights_sha256": weights_sha256(vm.weights),
        }
        for vm, p in ((a, a_path), (b, b_path))
    ]
    name = name or f"{a.model_name}+{b.model_name}"
    layer = None
    if a.version == "v1":  # record the HuBERT layer both parents read (_difference checked)
        from rvc.io.v1_layer import file_v1_layer

        layer = file_v1_layer(a.metadata, str(a.path))[0]
    return save_voice_model(
        out,
        weights,
        a.config,
        model_name=name,
        use_f0=a.use_f0,
        version=a.version,
        vocoder=a.vocoder,
        author=author,
        embedder_model=a.metadata.get("embedder_model") or b.metadata.get("embedder_model"),
        v1_layer=layer,
        info=f"blend of {parents[0]['name']} and {parents[1]['name']}, ratio {ratio:g}",
        extra={"blend": {"ratio": ratio, "parents": parents}},
    )
