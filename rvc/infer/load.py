"""Build a `VoiceConverter` from files and names: the voice model, its index, its embedder.

The embedder comes from the model's `embedder_model` metadata (RVC WebUI files have none:
ContentVec) at the model's version (v1: 256-dim, v2: 768-dim), unless one is given. A v1
model's HuBERT layer is the file's (`rvc.io.v1_layer`: 9, or 12 for Applio 3.2.5-3.2.8 files)
unless `v1_layer` is set. F0 estimators and embedders given by name are built from the same
`conf/f0` and `conf/embedder` files extraction uses.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from rvc.errors import RVCError
from rvc.infer.converter import VoiceConverter

log = logging.getLogger(__name__)

DEFAULT_EMBEDDER = "contentvec"  # what RVC WebUI models were trained with


class ConverterLoadError(RVCError, ValueError):
    """A model, index or embedder that cannot be used together; the message names them."""


def group_config(group: str, name: str) -> DictConfig:
    """The `<group>/<name>` option of the registry (names with '-' match files with '_')."""
    from rvc.registry import RegistryError, load

    try:
        return load(group, name)
    except RegistryError as e:
        raise ConverterLoadError(str(e)) from e


def _build(cfg: Any, device: str, **overrides: Any) -> Any:
    from rvc.registry import RegistryError, build

    try:
        return build(cfg, device, **overrides)
    except RegistryError as e:
        raise ConverterLoadError(str(e)) from e


def build_f0(f0: Any, device: str = "cpu") -> Any:
    """An F0 estimator from an object, a config node or a name (`rmvpe`, `fcpe`, ...)."""
    if f0 is None or hasattr(f0, "compute"):
        return f0
    cfg = group_config("f0", f0) if isinstance(f0, str) else f0
    return _build(cfg, device)


def _has_v1_layer(cfg: Any) -> bool:
    """Whether the config's embedder class declares a v1 layer option (`has_v1_layer`)."""
    from hydra.utils import get_class

    try:
        cls = get_class(str(cfg["_target_"]))
    except Exception as e:  # a typo in _target_: say which embedder, now
        raise ConverterLoadError(f"embedder {cfg.get('_target_')!r}: cannot import it ({e})") from e
    return bool(getattr(cls, "has_v1_layer", False))


def build_embedder(voice: Any, embedder: Any = None, device: str = "cpu") -> Any:
    """The embedder to convert with: `embedder` (object, config node or name) or the one the
    model's metadata names, at the model's version and feature width (and, for v1, its layer).
    A node without `_target_` (infer.py's `embedder.v1_layer=12` alone) sets options of the
    model's own embedder."""
    if embedder is not None and hasattr(embedder, "n_frames"):
        layer = getattr(embedder, "v1_layer", None)
        if layer is not None and voice.text_enc_hidden_dim == 256:  # built by the caller: kept
            from rvc.io.v1_layer import file_v1_layer

            found, why = file_v1_layer(voice.metadata, str(voice.path))
            if found != layer:
                log.warning(
                    "v1 model %s: the embedder given reads HuBERT layer %d, but the file "
                    "points to %d (%s)", Path(voice.path).name, layer, found, why,
                )  # fmt: skip
        return embedder
    options = None
    if isinstance(embedder, Mapping) and "_target_" not in embedder:
        options, embedder = embedder, None
    name = embedder if isinstance(embedder, str) else None
    if embedder is None:
        name = voice.metadata.get("embedder_model") or DEFAULT_EMBEDDER
        if name == "custom":
            raise ConverterLoadError(
                f"{voice.path}: trained with a custom embedder; name it, e.g. "
                "embedder=custom embedder.local_path=<folder>"
            )
    if name:
        cfg = group_config("embedder", name)
    else:  # a node of the caller's config keeps its interpolations
        cfg = embedder if isinstance(embedder, DictConfig) else OmegaConf.create(embedder)
    if options:
        cfg = OmegaConf.merge(cfg, options)
    dim = voice.text_enc_hidden_dim
    version = "v1" if dim == 256 else "v2"
    keys = set(cfg.keys())
    overrides: dict[str, Any] = {k: v for k, v in (("version", version), ("dim", dim)) if k in keys}
    if _has_v1_layer(cfg):
        if version == "v1":
            from rvc.io.v1_layer import choose_v1_layer

            try:
                layer, why = choose_v1_layer(voice.metadata, cfg.get("v1_layer"), str(voice.path))
            except ValueError as e:
                raise ConverterLoadError(str(e)) from e
            overrides["v1_layer"] = layer
            log.info("v1 model %s: HuBERT layer %d (%s)", Path(voice.path).name, layer, why)
    elif "v1_layer" in keys:  # e.g. infer.yaml's default on an embedder without layers
        cfg = OmegaConf.masked_copy(cfg, sorted(keys - {"v1_layer"}))
    return _build(cfg, device, **overrides)


def check_dims(voice: Any, embedder: Any, index: Any, index_path: Any = None) -> None:
    """Model, embedder and index must agree on the feature width."""
    dims = {"model": voice.text_enc_hidden_dim, "embedder": int(embedder.dim)}
    if index is not None:
        dims["index"] = int(index.d)
    if len(set(dims.values())) > 1:
        parts = ", ".join(f"{k} {v}" for k, v in dims.items())
        raise ConverterLoadError(
            f"feature widths disagree ({parts}): {voice.path} with embedder "
            f"'{getattr(embedder, 'name', '?')}'"
            + (f" and index {index_path}" if index_path else "")
        )


def load_converter(
    voice: str | os.PathLike,
    index: str | os.PathLike | None = "auto",
    f0: Any = "rmvpe",
    embedder: Any = None,
    device: str = "cpu",
    precision: str = "fp32",
    compile: bool | str = False,
) -> VoiceConverter:
    """Everything conversion needs from a `.pth`: its network, index, embedder and F0;
    `precision` fp32 | bf16 | fp16 | auto (`device.inference_precision`), `compile` the
    vocoder through torch.compile (`device.compile`: true = inductor, or a backend name)."""
    from rvc.io.safe_load import ModelFileError
    from rvc.io.voice_model import load_voice_model
    from rvc.utils.device import inference_dtype

    try:
        inference_dtype(precision, device)  # a typo fails before any model is loaded
    except ValueError as e:
        raise ConverterLoadError(str(e)) from e
    try:
        vm = load_voice_model(voice, device=device)
    except (ModelFileError, OSError, KeyError, ValueError) as e:
        raise ConverterLoadError(f"{voice}: cannot load the voice model ({e})") from e
    emb = build_embedder(vm, embedder, device)
    idx = None
    if index is not None and str(index) not in ("", "none", "null"):
        from rvc.index.search import IndexFileError, find_index, read_index

        path = find_index(vm.path) if str(index) == "auto" else Path(index)
        if path is not None:
            try:
                idx = read_index(path)
            except IndexFileError as e:
                raise ConverterLoadError(str(e)) from e
            check_dims(vm, emb, idx, path)
    check_dims(vm, emb, None)
    f0_model = build_f0(f0, device) if vm.use_f0 else None
    return VoiceConverter(vm, emb, f0_model, idx, device, precision, compile)
