"""HuBERT-family content embedders (ContentVec, language HuBERTs, SPIN, custom) on `transformers`.

The checkpoints are Applio's: a `transformers` `HubertModel` folder (`config.json` +
`pytorch_model.bin`), optionally with a fairseq-style `final_proj` Linear(768→256) beside it.
v2 features are the last (12th) layer's hidden states (768-dim); v1 features are `final_proj` of
layer `v1_layer` (256-dim): 9 as the RVC WebUI extracts them from fairseq's `hubert_base.pt`, 12
for v1 models Applio 3.2.5-3.2.8 trained (rvc/io/v1_layer.py).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from rvc.embedders.base import HUBERT_CONV, Embedder, conv_frames
from rvc.embedders.hubert_files import EmbedderConfigError, read_config, read_weights, split_state
from rvc.formats import APPLIO_REPO
from rvc.io.v1_layer import features_v1_layer
from rvc.models.layouts import FEATURE_DIMS
from rvc.utils.hub import MissingModelFileError, resolve_file

STANDARD_DIMS = FEATURE_DIMS  # one table: rvc/models/layouts.py
CONFIG_FILE = "config.json"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")  # tried in this order when not named


def version_dim(version: str) -> int:
    """The feature size RVC models of `version` expect (v1: 256, v2: 768)."""
    if version not in STANDARD_DIMS:
        raise ValueError(f"embedder version must be 'v1' or 'v2', got {version!r}")
    return STANDARD_DIMS[version]


def _conv_lengths(lengths: torch.Tensor, conv: tuple[tuple[int, int], ...]) -> torch.Tensor:
    """`conv_frames` for a [B] tensor of sample counts."""
    for kernel, stride in conv:
        lengths = torch.div(lengths - kernel, stride, rounding_mode="floor") + 1
    return lengths.clamp(min=0)


def _masked_group_norm(x: torch.Tensor, valid: torch.Tensor, gn: nn.GroupNorm) -> torch.Tensor:
    """GroupNorm over each clip's valid (leading) frames only, so a padded clip normalises as it
    would alone. Padded frames come out 0 (the encoder zeroes them anyway). The native kernel per
    clip is ~9× faster on CPU than masked sums over the whole batch."""

    def norm(v: torch.Tensor) -> torch.Tensor:  # fp32 stats: fp16 sums over long clips overflow
        w, b = (gn.weight.float(), gn.bias.float()) if gn.affine else (None, None)
        return F.group_norm(v.float(), gn.num_groups, w, b, gn.eps).to(x.dtype)

    lengths = valid.sum(-1).tolist()  # [B] valid frames
    if all(n == x.shape[-1] for n in lengths):
        return norm(x)
    out = torch.zeros_like(x)
    for i, n in enumerate(lengths):
        if n:
            out[i, :, :n] = norm(x[i : i + 1, :, :n])[0]
    return out


class HubertEmbedder(Embedder):
    """A `transformers` HuBERT (+ optional `final_proj`) giving RVC v1/v2 content features.

    Files come from `local_path` (a folder with `config.json` + weights) or the hub
    (`repo_id`, `subfolder`; cache first). The model loads lazily on first use (or `load()`).
    `padding_mask` is [B, T16k] bool, True at padded samples (fairseq/RVC convention); clips are
    right-padded. Frames past a clip's own `n_frames` are zero.
    """

    has_v1_layer = True  # v1 = final_proj of a chosen transformer layer

    def __init__(
        self,
        name: str = "hubert",
        repo_id: str | None = APPLIO_REPO,
        subfolder: str | None = None,  # each option's folder: its conf/embedder YAML
        local_path: str | os.PathLike | None = None,
        version: str = "v2",
        dim: int | None = None,
        weights: str | None = "pytorch_model.bin",
        config: str = CONFIG_FILE,
        v1_layer: int | str = "auto",
        normalize: bool = False,
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        device: str | torch.device = "cpu",
    ):
        super().__init__()
        self.name = name
        self.version = version
        standard = version_dim(version)  # rejects anything but v1/v2 now, not at first use
        self.dim = int(dim) if dim is not None else standard  # checked against the checkpoint
        self.repo_id, self.subfolder = repo_id, subfolder
        self.local_path = Path(local_path).expanduser() if local_path else None
        self.weights_name, self.config_name = weights, config
        # auto: RVC's 9 (conversion resolves auto from the .pth before building us)
        self.v1_layer = features_v1_layer(v1_layer, f"embedder '{name}': v1_layer")
        # zero-mean/unit-variance input, as some non-fairseq HuBERTs expect; RVC/Applio: off
        self.normalize = normalize
        self.revision, self.cache_dir = revision, cache_dir
        if self.local_path is None and not repo_id:
            raise ValueError(f"embedder '{name}': give local_path (a folder) or a hub repo_id")
        from rvc.utils.device import resolve_device

        # an empty buffer follows .to(device) before the weights exist, so load() knows where
        self.register_buffer(
            "_where", torch.empty(0, device=resolve_device(device)), persistent=False
        )
        self.model: nn.Module | None = None
        self.final_proj: nn.Linear | None = None
        self._conv = HUBERT_CONV

    @property
    def source(self) -> str:
        """Where the files come from, for messages."""
        if self.local_path is not None:
            return str(self.local_path)
        return f"hub {self.repo_id}/{self.subfolder or ''}".rstrip("/")

    def extra_repr(self) -> str:
        layer = f", v1_layer={self.v1_layer}" if self.version == "v1" else ""
        return (
            f"name={self.name!r}, version={self.version}, dim={self.dim}{layer}, "
            f"source={self.source}"
        )

    def n_frames(self, n_samples: int) -> int:
        """Valid 20 ms frames for a clip of `n_samples` at 16 kHz (~n / 320)."""
        return conv_frames(n_samples, self._conv)

    def _files(self) -> tuple[Path, Path]:
        """Local paths of (config.json, weights), from the folder or the hub cache/download."""
        names = (self.weights_name,) if self.weights_name else WEIGHT_FILES
        if self.local_path is not None:
            names = tuple(dict.fromkeys(names + WEIGHT_FILES))  # a folder may hold either format
            folder = self.local_path
            if not folder.is_dir():
                raise MissingModelFileError(
                    f"embedder '{self.name}': folder not found: {folder} (it must hold "
                    f"{self.config_name} and one of {', '.join(names)})"
                )
            cfg = folder / self.config_name
            if not cfg.is_file():
                raise MissingModelFileError(
                    f"embedder '{self.name}': {folder} has no {self.config_name}; a HuBERT "
                    f"embedder folder needs {self.config_name} and {' or '.join(names)} "
                    f"(as Applio's folders in {APPLIO_REPO} do)"
                )
            for n in names:
                if (folder / n).is_file():
                    return cfg, folder / n
            raise MissingModelFileError(
                f"embedder '{self.name}': {folder} has no weights file ({' or '.join(names)})"
            )
        prefix = f"{self.subfolder.strip('/')}/" if self.subfolder else ""
        try:
            cfg = self._hub(prefix + self.config_name)
            errors: list[str] = []
            for n in names:
                try:
                    return cfg, self._hub(prefix + n)
                except MissingModelFileError as e:
                    errors.append(str(e))
            raise MissingModelFileError("\n".join(errors))
        except MissingModelFileError as e:
            raise MissingModelFileError(
                f"embedder '{self.name}': {e}\nOr put {self.config_name} and "
                f"{' or '.join(names)} from {self.repo_id}/{prefix} in a folder and pass it as "
                f"local_path (embedder.local_path=<folder>)."
            ) from e

    def _hub(self, filename: str) -> Path:
        return resolve_file(
            self.repo_id, filename, revision=self.revision, cache_dir=self.cache_dir
        )

    def load(self) -> HubertEmbedder:
        """Read config + weights now (otherwise on first forward); check version/dim; eval."""
        if self.model is None:
            # weights built under inference mode would be inference tensors: later .to() fails
            with torch.inference_mode(False):
                self._load()
            if self.dtype is not None:  # cast() before the weights were there
                self.cast(self.dtype)
        return self

    def _load(self) -> None:
        from transformers import HubertModel

        cfg_path, w_path = self._files()
        where = f"embedder '{self.name}' ({cfg_path.parent})"
        config = read_config(cfg_path)
        if self.version == "v2" and config.hidden_size != self.dim:
            raise EmbedderConfigError(
                f"{where}: hidden size {config.hidden_size}, but v2 features of dim {self.dim} "
                "were asked for; use a HuBERT-base-sized checkpoint (768) or set dim to match"
            )
        if self.version == "v1" and not 1 <= self.v1_layer <= config.num_hidden_layers:
            raise EmbedderConfigError(
                f"{where}: v1 reads layer {self.v1_layer}, but the model has "
                f"{config.num_hidden_layers} layers"
            )
        state, proj = split_state(read_weights(w_path))
        model = HubertModel(config)
        try:
            result = model.load_state_dict(state, strict=False)
        except RuntimeError as e:  # shape mismatches raise even when not strict
            detail = str(e).strip().splitlines()[-1].strip()
            raise EmbedderConfigError(
                f"{where}: {w_path.name} does not fit {cfg_path.name}: {detail}"
            ) from e
        missing = [k for k in result.missing_keys if k != "masked_spec_embed"]  # training only
        if missing:
            raise EmbedderConfigError(
                f"{where}: {w_path.name} does not fit {cfg_path.name}: missing "
                f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}"
            )
        final_proj = None
        if proj:
            if set(proj) != {"weight", "bias"} or proj["weight"].shape[1] != config.hidden_size:
                raise EmbedderConfigError(f"{where}: {w_path.name} has a malformed final_proj")
            final_proj = nn.Linear(proj["weight"].shape[1], proj["weight"].shape[0])
            final_proj.load_state_dict(proj)
        if self.version == "v1":
            if final_proj is None:
                raise EmbedderConfigError(
                    f"{where}: v1 features need the checkpoint's final_proj layer, and "
                    f"{w_path.name} has none; use v2 or a checkpoint with final_proj"
                )
            if final_proj.out_features != self.dim:
                raise EmbedderConfigError(
                    f"{where}: final_proj gives {final_proj.out_features}-dim v1 features, "
                    f"but dim {self.dim} was asked for"
                )
        self._conv = tuple(zip(config.conv_kernel, config.conv_stride, strict=True))
        device = self._where.device
        self.model = model.eval().requires_grad_(False).to(device)
        if final_proj is not None:
            self.final_proj = final_proj.eval().requires_grad_(False).to(device)

    def cast(self, dtype: torch.dtype | None) -> HubertEmbedder:
        """As `Embedder.cast`; the first layer's GroupNorm stays fp32: its statistics over a
        long clip need fp32 sums (`_masked_group_norm`), and its weights are then never re-cast."""
        super().cast(dtype)
        if self.model is None:  # nothing loaded (a stand-in's load)
            return self
        norm = getattr(self.model.feature_extractor.conv_layers[0], "layer_norm", None)
        if isinstance(norm, nn.GroupNorm):
            norm.float()
        return self

    def _conv_features(self, audio: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The conv feature encoder, with the first layer's GroupNorm masked to each clip."""
        layers = self.model.feature_extractor.conv_layers
        x = audio[:, None]  # [B, 1, T]
        first = layers[0]
        if isinstance(getattr(first, "layer_norm", None), nn.GroupNorm):
            # GroupNorm pools over time: plain batching would let padding shift the statistics
            x = first.conv(x)  # [B, C, F0]
            n0 = _conv_lengths(lengths, self._conv[:1])
            valid = torch.arange(x.shape[-1], device=x.device)[None] < n0[:, None]
            x = first.activation(_masked_group_norm(x, valid, first.layer_norm))
            layers = layers[1:]
        for layer in layers:
            x = layer(x)
        return x  # [B, C, F]

    def _encode(self, hidden: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """Transformer encoder → the version's layer ([B, F, hidden])."""
        encoder = self.model.encoder
        if self.version == "v2" or self.v1_layer == len(encoder.layers):
            # the last layer: as Applio's final_proj(last_hidden_state), final norm included
            return encoder(hidden, attention_mask=mask).last_hidden_state

        class _Reached(Exception):  # stops the encoder once the v1 layer has run
            pass

        taken: list[torch.Tensor] = []

        def grab(_module: nn.Module, _inputs: Any, output: Any) -> None:
            taken.append(output[0] if isinstance(output, tuple) else output)
            raise _Reached

        handle = encoder.layers[self.v1_layer - 1].register_forward_hook(grab)
        try:
            encoder(hidden, attention_mask=mask)
        except _Reached:
            pass
        finally:
            handle.remove()
        return taken[0]

    @torch.inference_mode()
    def forward(
        self, audio: torch.Tensor, padding_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """[B, T16k] audio (+ [B, T16k] bool padding mask) → [B, frames, dim] features."""
        lengths = self.check_input(audio, padding_mask)
        self.load()
        device = self._where.device
        dtype = next(self.model.parameters()).dtype  # follows cast() / .half() on the embedder
        audio = audio.to(device=device, dtype=torch.float32)  # normalised in fp32, then cast
        lengths = lengths.to(device)
        b, t = audio.shape
        if padding_mask is not None:
            audio = audio.masked_fill(padding_mask.to(device), 0.0)
        valid_t = torch.arange(t, device=device)[None] < lengths[:, None]  # [B, T]
        if self.normalize:
            n = lengths.clamp(min=1)[:, None].to(audio.dtype)
            mean = audio.sum(-1, keepdim=True) / n
            var = (((audio - mean) * valid_t) ** 2).sum(-1, keepdim=True) / n
            audio = ((audio - mean) / torch.sqrt(var + 1e-7)) * valid_t
        feats = self._conv_features(audio.to(dtype), lengths).transpose(1, 2)  # [B, F, C]
        frames = _conv_lengths(lengths, self._conv)  # [B]
        valid = torch.arange(feats.shape[1], device=device)[None] < frames[:, None]  # [B, F]
        hidden = self.model.feature_projection(feats)
        if isinstance(hidden, tuple):  # older transformers also return the normed conv features
            hidden = hidden[0]
        mask = None if bool(valid.all()) else valid
        out = self._encode(hidden, mask)  # [B, F, hidden]
        if self.version == "v1":
            out = self.final_proj(out)  # [B, F, 256]
        return out * valid[..., None].to(out.dtype)
