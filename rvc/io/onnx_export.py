"""ONNX export of a voice model's conversion path (`rvc-model onnx`), in the layouts ONNX RVC
runtimes read.

What we match (read from the public sources' behaviour, not their code):

- `webui` (default): the RVC WebUI's ONNX export (`infer/modules/onnx/export.py`,
  `SynthesizerTrnMsNSFsidM` in `infer/lib/infer_pack/models_onnx.py`) and its ONNX inference
  (`OnnxRVC`), which runtimes written for the WebUI's files follow. Inputs
  `phone` [1, T, 256|768] float32, `phone_lengths` [1] int64, `pitch` [1, T] int64 (coarse
  1..255), `pitchf` [1, T] float32 (Hz), `ds` [1] int64 (speaker id), `rnd` [1, inter_channels
  (192), T] float32: the prior noise, already scaled (the runtime passes randn · 0.66666), so
  that the graph itself is deterministic apart from the NSF source. No-F0 models drop `pitch`
  and `pitchf`. Output `audio` [1, 1, T·hop] float32. Dynamic axes: T of phone, pitch, pitchf
  and rnd. fp32 (the WebUI exports fp32 because its C++ runtime cannot take fp16).
- `w-okada`: the w-okada voice changer (`server/voice_changer/RVC/onnxExporter/export2onnx.py`
  and `OnnxRVCInferencer`): inputs `feats`, `p_len`, `pitch`, `pitchf`, `sid` (no-F0: `feats`,
  `p_len`, `sid`), the prior noise drawn inside the graph (randn · 0.66666), output `audio`.
- Both: opset 17 by default (w-okada's; `opset=13`, the WebUI's, also exports), and w-okada's
  model metadata: `metadata_props["metadata"]` a JSON with
  `application`, `version`, `modelType`, `samplingRate`, `f0`, `embChannels`, `embedder`,
  `embOutputLayer`, `useFinalProj` (the keys its `_setInfoByONNX` reads), plus ours under `rvc`.

The NSF sources (HiFi-GAN NSF, MRF HiFi-GAN, RefineGAN) draw noise and the overtones' start
phases inside the graph (RandomNormalLike / RandomUniform), as in those tools, and so does
RefineGAN's AdaIN noise. `source_noise=
False` exports them without (noise 0, start phases 0): a deterministic graph, which the tests
compare with `Synthesizer.infer` under `quiet_sources`. Exported with the TorchScript exporter
(`dynamo=False`), as those tools do: it writes opsets 13-17 and takes ~1 s where the dynamo
exporter takes ~15 s (tiny model, 2 cores) and cannot convert its graph down to opset 17.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rvc.errors import RVCError
from rvc.io.checkpoints import load_state_checked
from rvc.io.voice_model import (
    VoiceModel,
    build_synthesizer,
    read_voice_model,
    weights_sha256,
)
from rvc.models.inference import for_inference
from rvc.models.synthesizer import INFER_NOISE_SCALE

DEFAULT_OPSET = 17  # w-okada's
MIN_OPSET = 13  # the RVC WebUI's; what the exporter needs for our ops (tested)
OUTPUT = "audio"
# layout -> input names in call order (pitch, pitchf only for F0 models; rnd only where given)
LAYOUTS = {
    "webui": ("phone", "phone_lengths", "pitch", "pitchf", "ds", "rnd"),
    "w-okada": ("feats", "p_len", "pitch", "pitchf", "sid"),
}
# our embedder names -> w-okada's EnumEmbedderTypes values
_WOKADA_EMBEDDER = {"japanese_hubert_base": "hubert-base-japanese"}


class OnnxExportError(RVCError, RuntimeError):
    """A model that cannot be exported, or a missing ONNX package; the message says which."""


def _require_onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise OnnxExportError(
            "ONNX export needs the onnx package: pip install -c constraints.txt -e '.[onnx]'"
        ) from None
    return onnx


class OnnxSynthesizer(nn.Module):
    """`Synthesizer.infer` as one traceable graph: the inputs of a layout -> audio [1, 1, T·hop]."""

    def __init__(self, net: nn.Module, layout: str = "webui") -> None:
        super().__init__()
        if layout not in LAYOUTS:
            raise OnnxExportError(f"unknown ONNX layout {layout!r}; known: {', '.join(LAYOUTS)}")
        self.net = net
        self.noise_input = "rnd" in LAYOUTS[layout]
        self.input_names = [
            n
            for n in LAYOUTS[layout]
            if net.use_f0 or n not in ("pitch", "pitchf")  # no-F0 models take no pitch
        ]

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        x = dict(zip(self.input_names, inputs, strict=True))
        net = self.net
        phone = x["phone"] if "phone" in x else x["feats"]  # [1, T, dim]
        lengths = x["phone_lengths"] if "phone_lengths" in x else x["p_len"]  # [1]
        sid = x["ds"] if "ds" in x else x["sid"]  # [1]
        pitch, pitchf = x.get("pitch"), x.get("pitchf")  # [1, T] each, or None (no-F0)
        g = net.emb_g(sid).unsqueeze(-1)  # [1, gin, 1]
        m_p, logs_p, x_mask = net.enc_p(phone, pitch, lengths)  # [1, C, T] ×2, [1, 1, T]
        # the WebUI's rnd is the scaled noise; w-okada draws it inside
        rnd = x["rnd"] if self.noise_input else torch.randn_like(m_p) * INFER_NOISE_SCALE
        z_p = (m_p + torch.exp(logs_p) * rnd) * x_mask
        z = net.flow(z_p, x_mask, g=g, reverse=True)
        return net.dec(z * x_mask, pitchf, g=g)  # [1, 1, T·hop]


@contextlib.contextmanager
def quiet_sources(net: nn.Module) -> Iterator[nn.Module]:
    """Inside: no random draws in the decoder (NSF noise 0, overtones' start phases 0, RefineGAN's
    AdaIN noise 0), so torch and onnxruntime give the same audio for the same inputs."""
    from rvc.models.nsf import SineSource
    from rvc.models.vocoders.refinegan import LRELU_SLOPE, AdaIN

    sources = [m for m in net.modules() if isinstance(m, SineSource)]
    adains = [m for m in net.modules() if isinstance(m, AdaIN)]
    for m in sources:
        m.phase0 = torch.zeros(())  # start phases k·0 instead of random
        m.add_noise = types.MethodType(lambda self, sines, uv: sines * uv, m)
    for m in adains:
        m.forward = types.MethodType(lambda self, x: F.leaky_relu(x, LRELU_SLOPE), m)
    try:
        yield net
    finally:  # the instance attributes shadowed the class methods: removing them restores
        for m in sources:
            m.phase0 = None
            del m.add_noise
        for m in adains:
            del m.forward


def example_inputs(net: nn.Module, layout: str, frames: int, seed: int = 0) -> list[torch.Tensor]:
    """Random inputs of a layout for `frames` content frames (the order `OnnxSynthesizer` takes)."""
    g = torch.Generator().manual_seed(seed)
    by_name = {
        "phone": torch.randn(1, frames, net.text_enc_hidden_dim, generator=g),
        "lengths": torch.tensor([frames], dtype=torch.long),
        "pitch": torch.randint(1, 256, (1, frames), generator=g),
        "pitchf": 100 + 200 * torch.rand(1, frames, generator=g),
        "sid": torch.zeros(1, dtype=torch.long),
        "rnd": torch.randn(1, net.config[2], frames, generator=g) * INFER_NOISE_SCALE,
    }
    alias = {"feats": "phone", "phone_lengths": "lengths", "p_len": "lengths", "ds": "sid"}
    return [by_name[alias.get(n, n)] for n in OnnxSynthesizer(net, layout).input_names]


def wokada_metadata(vm: VoiceModel) -> dict[str, Any]:
    """The JSON w-okada embeds in `metadata_props["metadata"]`, for this voice model."""
    layer = 12
    if vm.version == "v1":
        from rvc.io.v1_layer import file_v1_layer

        layer = file_v1_layer(vm.metadata, str(vm.path))[0]
    embedder = vm.metadata.get("embedder_model") or "hubert_base"  # w-okada's default
    return {
        "application": "VC_CLIENT",
        "version": "2.1",
        "modelType": "onnxRVC" if vm.use_f0 else "onnxRVCNono",
        "samplingRate": vm.sample_rate,
        "f0": vm.use_f0,
        "embChannels": vm.text_enc_hidden_dim,
        "embedder": _WOKADA_EMBEDDER.get(embedder, embedder),
        "embOutputLayer": layer,
        "useFinalProj": vm.version == "v1",  # v1 features go through HuBERT's final_proj
    }


def export_onnx(
    model: str | os.PathLike | VoiceModel,
    out: str | os.PathLike,
    *,
    layout: str = "webui",
    opset: int = DEFAULT_OPSET,
    source_noise: bool = True,
    frames: int = 64,
) -> dict[str, Any]:
    """Write `out` (.onnx, atomically) from a voice model file or loaded `VoiceModel`; returns
    {"inputs": names, "output": name, "metadata": the embedded JSON}."""
    onnx = _require_onnx()
    vm = model if isinstance(model, VoiceModel) else read_voice_model(model)
    if opset < MIN_OPSET:
        raise OnnxExportError(f"--opset {opset}: the graph needs opset >= {MIN_OPSET}; try 17")
    # a fresh network with the weight norms folded into plain weights: a smaller graph and a
    # 2-3x faster trace. Not a deepcopy: folding a copy's weight norm would strip the shared
    # parametrized class of the caller's network too
    net = build_synthesizer(vm.config, vm.use_f0, vm.vocoder, vm.text_enc_hidden_dim)
    load_state_checked(net, vm.weights, str(vm.path), ignore_missing=("enc_q.",))
    net = for_inference(net.float(), None, "cpu")
    graph = OnnxSynthesizer(net, layout)
    names = graph.input_names
    time_axis = {"phone": 1, "feats": 1, "pitch": 1, "pitchf": 1, "rnd": 2}
    dynamic = {n: {time_axis[n]: "T"} for n in names if n in time_axis}
    dynamic[OUTPUT] = {2: "samples"}
    args = tuple(example_inputs(net, layout, frames))
    from rvc.utils.atomic import atomic_path

    ctx = contextlib.nullcontext() if source_noise else quiet_sources(net)
    meta = {**wokada_metadata(vm), "rvc": _our_metadata(vm, layout, source_noise)}
    with ctx, atomic_path(out) as tmp, torch.no_grad(), _quiet_exporter():
        try:
            torch.onnx.export(
                graph, args, str(tmp), input_names=names, output_names=[OUTPUT],
                dynamic_axes=dynamic, opset_version=int(opset), dynamo=False,
                do_constant_folding=True,
            )  # fmt: skip
        except Exception as e:  # the exporter's messages run to pages: the first line
            first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
            raise OnnxExportError(
                f"{vm.path}: ONNX export of the {vm.vocoder} synthesizer failed ({first})"
            ) from e
        proto = onnx.load(str(tmp))
        entry = proto.metadata_props.add()
        entry.key, entry.value = "metadata", json.dumps(meta)
        onnx.save(proto, str(tmp))
    return {"inputs": names, "output": OUTPUT, "metadata": meta}


def _our_metadata(vm: VoiceModel, layout: str, source_noise: bool) -> dict[str, Any]:
    return {
        "model_name": vm.model_name,
        "version": vm.version,
        "vocoder": vm.vocoder,
        "layout": layout,
        "hop_length": math.prod(vm.config[12]),
        "inter_channels": int(vm.config[2]),
        "source_noise": source_noise,
        "weights_sha256": weights_sha256(vm.weights),
        "source_file": Path(vm.path).name if vm.path else None,
    }


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    # the TorchScript exporter warns about its deprecation and every traced size on each call
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
