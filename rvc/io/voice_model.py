"""The voice model `.pth` (docs/formats.md §1): the small inference-only file users share.

Reads files from RVC WebUI (old: string `sr` like "40k", `info`, no metadata), Applio and
ultimate-rvc (metadata, `vocoder`), fp16 or fp32; writes ours in exactly their format so that
they load in those tools: fp16 weights without `enc_q.*`, `weight_g`/`weight_v` names, the
18-item `config`, int `sr`, `f0` 1/0, `version`, `info` and the newer metadata keys.
"""

from __future__ import annotations

import datetime
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rvc.formats import RVC_VOCODER, SampleRateError, parse_sample_rate
from rvc.io.checkpoints import load_state_checked
from rvc.io.detect import detect_traits
from rvc.io.safe_load import ModelFileError, load_pth
from rvc.io.v1_layer import RECORD_KEY as V1_LAYER_KEY
from rvc.io.v1_layer import parse_v1_layer
from rvc.io.weight_norm_names import from_rvc_names, to_rvc_names
from rvc.models.layouts import describe_feature_dims, feature_version
from rvc.models.vocoders import vocoder_names
from rvc.utils.atomic import save_torch


@dataclass
class VoiceModel:
    """A loaded voice model: the network (if built), its config and the file's metadata."""

    config: list
    sample_rate: int
    version: str
    use_f0: bool
    vocoder: str
    weights: dict[str, torch.Tensor]  # parametrization names, as stored (fp16 in our files)
    metadata: dict[str, Any] = field(default_factory=dict)  # every other key of the file
    synthesizer: nn.Module | None = None
    path: Path | None = None

    @property
    def model_name(self) -> str | None:
        """The `model_name` metadata, else the file stem."""
        return self.metadata.get("model_name") or (self.path.stem if self.path else None)

    @property
    def text_enc_hidden_dim(self) -> int:
        """Width of the content features the model takes (256 for v1, 768 for v2)."""
        return int(self.weights["enc_p.emb_phone.weight"].shape[1])


def _file_rate(value: Any, where: str) -> int:
    try:
        return parse_sample_rate(value, where)
    except SampleRateError as e:  # a file's problem: the loaders' error type
        raise ModelFileError(str(e)) from e


def weights_sha256(weights: Mapping[str, torch.Tensor]) -> str:
    """sha256 hex over names, dtypes, shapes and bytes of the tensors.

    Independent of tensor order and of the weight-norm naming (hashed under RVC's names).
    """
    weights = to_rvc_names(weights)
    h = hashlib.sha256()
    for key in sorted(weights):
        t = weights[key].detach().cpu().contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _plain(value: Any, where: str) -> Any:
    """Plain Python data only (weights_only readers refuse numpy / OmegaConf objects)."""
    # builtin types only: numpy subclasses of float/str would not pass weights_only readers
    if value is None or isinstance(value, bool):
        return value
    for kind in (str, int, float):
        if isinstance(value, kind):
            return kind(value)
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy / torch scalar
        return value.item()
    if isinstance(value, (list, tuple)) or type(value).__name__ == "ListConfig":
        return [_plain(v, where) for v in value]
    raise TypeError(f"{where}: {type(value).__name__} is not plain data")


def _plain_tree(value: Any, where: str) -> Any:
    """`_plain`, also through dicts with string keys."""
    if isinstance(value, Mapping):
        return {str(k): _plain_tree(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_tree(v, where) for v in value]
    return _plain(value, where)


def build_synthesizer(
    config: list, use_f0: bool, vocoder: str = RVC_VOCODER, text_enc_hidden_dim: int = 768
) -> nn.Module:
    """A fresh `Synthesizer` for an 18-item config."""
    from rvc.models.synthesizer import Synthesizer  # lazy: reading metadata needs no networks

    return Synthesizer(
        *config, use_f0=use_f0, text_enc_hidden_dim=text_enc_hidden_dim, vocoder=vocoder
    )


def save_voice_model(
    path: str | os.PathLike,
    model: nn.Module | Mapping[str, torch.Tensor],
    config: list,
    *,
    model_name: str,
    use_f0: bool | None = None,
    version: str | None = None,
    vocoder: str | None = None,
    epoch: int = 0,
    step: int = 0,
    author: str | None = None,
    embedder_model: str | None = None,
    v1_layer: int | str | None = None,
    dataset_length: float | None = None,
    speakers_id: int = 1,
    creation_date: str | None = None,
    info: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Atomically write a voice model `.pth`; returns the written dict without `weight`.

    `use_f0`, `version` and `vocoder` default to what the tensors show; given, they must agree.
    `v1_layer` (v1 models): the HuBERT layer of the training features, recorded as `v1_layer`
    so conversion reads the same (rvc/io/v1_layer.py); `auto`/None records nothing.
    `extra`: more top-level keys of plain data (e.g. a blend's parents), after the usual ones.
    """
    state = model.state_dict() if isinstance(model, nn.Module) else dict(model)
    config = _plain(list(config), "config")
    if len(config) != 18:
        raise ValueError(f"config must have 18 items (docs/formats.md §1), got {len(config)}")
    if vocoder is not None and vocoder not in (known := vocoder_names()):
        raise ValueError(f"vocoder must be one of {', '.join(known)}, got {vocoder!r}")
    found = dict(zip(("version", "use_f0", "vocoder"), detect_traits(state, "model"), strict=True))
    for key, given in (("version", version), ("use_f0", use_f0), ("vocoder", vocoder)):
        if given is not None and given != found[key]:
            raise ValueError(f"{key}={given!r} but the model's tensors say {found[key]!r}")
    version, use_f0, vocoder = found["version"], found["use_f0"], found["vocoder"]
    weights = {
        k: v.detach().to("cpu", torch.float16 if v.is_floating_point() else v.dtype).contiguous()
        for k, v in to_rvc_names(state).items()
        if not k.startswith("enc_q.")  # the posterior encoder is for training only
    }
    sr = int(config[17])
    data: dict[str, Any] = {
        "weight": weights,
        "config": config,
        "info": info if info is not None else f"{int(epoch)}epoch",
        "sr": sr,
        "f0": 1 if use_f0 else 0,
        "version": version,
        "epoch": int(epoch),
        "step": int(step),
        "creation_date": creation_date or datetime.datetime.now().isoformat(timespec="seconds"),
        "model_hash": weights_sha256(weights),
        "dataset_length": _plain(dataset_length, "dataset_length"),
        "model_name": str(model_name),
        "author": _plain(author, "author"),
        "embedder_model": _plain(embedder_model, "embedder_model"),
        "speakers_id": int(speakers_id),
        "vocoder": vocoder,
    }
    layer = parse_v1_layer(v1_layer, "v1_layer")
    if version == "v1" and layer is not None:
        data[V1_LAYER_KEY] = layer
    for key, value in (extra or {}).items():
        if key in data:
            raise ValueError(f"extra key {key!r} would replace a voice-model key")
        data[key] = _plain_tree(value, key)
    save_torch(path, data)
    return {k: v for k, v in data.items() if k != "weight"}


def is_voice_model_dict(data: Any) -> bool:
    """True for the top-level dict of a voice model file."""
    return isinstance(data, dict) and "weight" in data and "config" in data


def read_voice_model(path: str | os.PathLike) -> VoiceModel:
    """Read and validate a voice model file without building the network."""
    return voice_model_from_dict(load_pth(path), path)


def voice_model_from_dict(data: Any, path: str | os.PathLike) -> VoiceModel:
    """Validate an already loaded voice model dict; `path` is for messages."""
    path = Path(path)
    if not isinstance(data, dict):
        raise ModelFileError(f"{path}: not a voice model (top level is {type(data).__name__})")
    if "weight" not in data and isinstance(data.get("model"), Mapping):
        raise ModelFileError(
            f"{path}: this is a training checkpoint or pretrained file, not a voice model; "
            "turn it into one with `rvc-model export`"
        )
    weight, config = data.get("weight"), data.get("config")
    if not isinstance(weight, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in weight.values()
    ):
        raise ModelFileError(f"{path}: not a voice model (no 'weight' state dict)")
    if not isinstance(config, (list, tuple)) or len(config) != 18:
        raise ModelFileError(f"{path}: 'config' must be a list of 18 items, got {config!r:.80}")
    weights = from_rvc_names(weight)
    if "enc_p.emb_phone.weight" not in weights or "emb_g.weight" not in weights:
        raise ModelFileError(f"{path}: 'weight' is not a synthesizer state dict (no enc_p/emb_g)")
    config = list(config)
    # like RVC WebUI: the speaker table size comes from the tensor (some files disagree)
    config[15] = int(weights["emb_g.weight"].shape[0])
    sr = _file_rate(config[17], f"{path}: config[17]")
    if "sr" in data:
        file_sr = _file_rate(data["sr"], f"{path}: 'sr'")
        if file_sr != sr:
            raise ModelFileError(f"{path}: 'sr' says {file_sr} but config says {sr}")
    config[17] = sr
    version = str(data.get("version") or "v1")  # the oldest files predate the key: v1
    width = int(weights["enc_p.emb_phone.weight"].shape[1])
    if feature_version(width) != version:
        raise ModelFileError(
            f"{path}: version '{version}' but emb_phone takes {width}-dim features "
            f"({describe_feature_dims()})"
        )
    vocoder = data.get("vocoder") or RVC_VOCODER  # absent in RVC WebUI files: RVC's own
    if vocoder not in (known := vocoder_names()):
        raise ModelFileError(f"{path}: unknown vocoder {vocoder!r}; known: {', '.join(known)}")
    f0 = data.get("f0", 1)
    use_f0 = bool(int(f0)) if not isinstance(f0, str) else f0.strip().lower() in ("1", "true")
    metadata = {k: v for k, v in data.items() if k not in ("weight", "config")}
    return VoiceModel(
        config=config,
        sample_rate=sr,
        version=version,
        use_f0=use_f0,
        vocoder=vocoder,
        weights=weights,
        metadata=metadata,
        path=path,
    )


def load_voice_model(
    path: str | os.PathLike,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> VoiceModel:
    """Read a voice model and build its `Synthesizer` (eval mode, `dtype`, on `device`)."""
    vm = read_voice_model(path)
    net = build_synthesizer(vm.config, vm.use_f0, vm.vocoder, vm.text_enc_hidden_dim)
    load_state_checked(net, vm.weights, str(vm.path), ignore_missing=("enc_q.",))
    vm.synthesizer = net.to(device=device, dtype=dtype).eval()
    return vm


def parameter_count(weights: Mapping[str, torch.Tensor], skip_prefix: str = "enc_q.") -> int:
    """Number of parameters stored (weight norm counts g and v), `enc_q` left out."""
    return sum(int(t.numel()) for k, t in weights.items() if not k.startswith(skip_prefix))
