"""`rvc-model`: inspect RVC `.pth` files and turn generator checkpoints into voice models.

rvc-model info PATH
rvc-model export CKPT OUT.pth --name NAME [--epoch N --step N --embedder NAME
                                           --vocoder NAME --sr N --author NAME]
rvc-model blend A.pth B.pth OUT.pth [--ratio R --name NAME --author NAME]
rvc-model onnx VOICE.pth OUT.onnx [--layout webui|w-okada --opset N]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from rvc.errors import report
from rvc.io.checkpoints import load_state_checked
from rvc.io.detect import (
    AmbiguousModelError,
    ModelDetectionError,
    detect_generator,
    discriminator_count,
    looks_like_discriminator,
    looks_like_generator,
    strip_module_prefix,
)
from rvc.io.safe_load import ModelFileError, load_pth
from rvc.io.voice_model import (
    build_synthesizer,
    is_voice_model_dict,
    parameter_count,
    save_voice_model,
    voice_model_from_dict,
    weights_sha256,
)
from rvc.io.weight_norm_names import from_rvc_names
from rvc.models.vocoders import vocoder_names


def _state_dict_of(data: Any) -> tuple[str, Mapping[str, torch.Tensor]] | None:
    """(container kind, state dict) of a checkpoint / pretrained / bare state dict, else None."""
    if isinstance(data, dict) and isinstance(data.get("model"), Mapping):
        return ("checkpoint" if "iteration" in data else "pretrained"), data["model"]
    if (
        isinstance(data, Mapping)
        and data
        and all(isinstance(v, torch.Tensor) for v in data.values())
    ):
        return "state dict", data
    return None


def _discriminator_version(state: Mapping[str, torch.Tensor]) -> str:
    """v1 (7 sub-discriminators), v2 (9) or v3 (with STFT resolution discriminators)."""
    state = from_rvc_names(strip_module_prefix(state))
    n = discriminator_count(state)
    # resolution discriminators are the only ones with (3, 9) 2-D kernels on one input channel
    n_res = sum(
        1
        for i in range(n)
        for key in (
            f"discriminators.{i}.convs.0.weight",
            f"discriminators.{i}.convs.0.parametrizations.weight.original1",
        )
        if key in state and tuple(state[key].shape[1:]) == (1, 3, 9)
    )
    if n_res:
        return f"v3 ({n} sub-discriminators, {n_res} resolution)"
    return {7: "v1", 9: "v2"}.get(n, "unknown") + f" ({n} sub-discriminators)"


def describe(path: str | os.PathLike) -> dict[str, Any]:
    """What `rvc-model info` shows, as an ordered dict of field -> value."""
    path = Path(path)
    data = load_pth(path)
    if is_voice_model_dict(data):
        vm = voice_model_from_dict(data, path)
        # build the network and load the weights: "info" succeeds only for a usable model
        net = build_synthesizer(vm.config, vm.use_f0, vm.vocoder, vm.text_enc_hidden_dim)
        load_state_checked(net, vm.weights, str(path), ignore_missing=("enc_q.",))
        md = vm.metadata
        return {
            "file": str(path),
            "format": "voice model",
            "model name": md.get("model_name"),
            "sample rate": vm.sample_rate,
            "version": vm.version,
            "F0": "yes" if vm.use_f0 else "no",
            "vocoder": vm.vocoder
            if "vocoder" in md
            else f"{vm.vocoder} (assumed: no 'vocoder' key)",
            "embedder": md.get("embedder_model"),
            "v1 layer": _v1_layer_row(vm),
            "epoch": md.get("epoch"),
            "step": md.get("step"),
            "info": md.get("info"),
            "blend": _blend_row(md.get("blend")),
            "parameters": parameter_count(vm.weights),
            "dtype": str(next(iter(vm.weights.values())).dtype).replace("torch.", ""),
            "model hash": md.get("model_hash"),
            "weights sha256": weights_sha256(vm.weights),
            "author": md.get("author"),
            "created": md.get("creation_date"),
        }
    found = _state_dict_of(data)
    if found is None:
        raise ModelFileError(f"{path}: not a voice model, checkpoint or pretrained file")
    container, state = found
    out: dict[str, Any] = {"file": str(path)}
    if looks_like_generator(state):
        out["format"] = {"checkpoint": "G checkpoint", "pretrained": "pretrained G"}.get(
            container, "generator state dict"
        )
        try:
            d = detect_generator(state, where=str(path))
            out.update({"sample rate": d.sample_rate, "version": d.version})
            out.update({"F0": "yes" if d.use_f0 else "no", "vocoder": d.vocoder})
        except AmbiguousModelError as e:
            out["sample rate"] = "ambiguous: " + str(e).split("(could be ")[-1].split(")")[0]
        except ModelDetectionError as e:
            out["detected"] = f"unknown ({e})"
    elif looks_like_discriminator(state):
        out["format"] = {"checkpoint": "D checkpoint", "pretrained": "pretrained D"}.get(
            container, "discriminator state dict"
        )
        out["version"] = _discriminator_version(state)
    else:
        raise ModelFileError(
            f"{path}: holds a state dict that is neither an RVC generator nor discriminator"
        )
    if isinstance(data, dict) and "iteration" in data:
        out["epoch"] = data.get("iteration")
        out["learning rate"] = data.get("learning_rate")
    out["parameters"] = parameter_count(state)
    out["tensors"] = len(state)
    out["weights sha256"] = weights_sha256(state)
    return out


def _blend_row(blend: Any) -> str | None:
    """A blend's parents and ratio (`rvc-model blend`), as `A ×0.7 + B ×0.3`."""
    try:
        r = float(blend["ratio"])
        (a, b) = (p["name"] for p in blend["parents"])
    except (TypeError, KeyError, ValueError):  # absent, or another tool's key of that name
        return None
    return f"{a} ×{1 - r:g} + {b} ×{r:g}"


def _v1_layer_row(vm: Any) -> str | None:
    """v1 models: the HuBERT layer conversion reads, and why (rvc/io/v1_layer.py)."""
    if vm.version != "v1":
        return None
    from rvc.io.v1_layer import file_v1_layer

    layer, why = file_v1_layer(vm.metadata, str(vm.path))
    return f"{layer} ({why})"


def export(
    ckpt: str | os.PathLike,
    out: str | os.PathLike,
    name: str,
    epoch: int | None = None,
    step: int | None = None,
    embedder: str | None = None,
    vocoder: str | None = None,
    sample_rate: int | None = None,
    author: str | None = None,
    v1_layer: int | None = None,
) -> dict[str, Any]:
    """Turn a generator checkpoint (ours, RVC's `G_*.pth`, a pretrained G) into a voice model."""
    data = load_pth(ckpt)
    if is_voice_model_dict(data):
        raise ModelFileError(f"{ckpt}: already a voice model; nothing to export")
    found = _state_dict_of(data)
    if found is None or not looks_like_generator(found[1]):
        what = (
            "a discriminator"
            if found and looks_like_discriminator(found[1])
            else "not a generator checkpoint"
        )
        raise ModelFileError(
            f"{ckpt}: {what}; export needs a G checkpoint (G_*.pth or {{'model': ...}})"
        )
    state = strip_module_prefix(found[1])
    det = detect_generator(state, sample_rate=sample_rate, where=str(ckpt))
    if vocoder is not None and vocoder != det.vocoder:
        raise ModelDetectionError(
            f"{ckpt}: --vocoder {vocoder} but the tensors are a {det.vocoder} generator"
        )
    net = build_synthesizer(det.config, det.use_f0, det.vocoder, det.text_enc_hidden_dim)
    # loading checks every tensor name and shape against the detected architecture
    load_state_checked(net, state, str(ckpt), ignore_missing=("enc_q.",))
    if epoch is None:
        epoch = int(data.get("iteration", 0) or 0) if isinstance(data, dict) else 0
    return save_voice_model(
        out,
        net,
        det.config,
        model_name=name,
        use_f0=det.use_f0,
        version=det.version,
        vocoder=det.vocoder,
        epoch=epoch,
        step=step or 0,
        embedder_model=embedder,
        author=author,
        v1_layer=v1_layer,
    )


def _print_table(rows: Mapping[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in rows.items():
        if value is not None:
            table.add_row(
                key, f"{value:,}" if isinstance(value, int) and key == "parameters" else str(value)
            )
    Console(highlight=False, soft_wrap=True).print(table)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rvc-model", description="Inspect, export, blend and convert RVC .pth files."
    )
    sub = p.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="show format, sample rate, version, F0, vocoder, ...")
    info.add_argument("path", help="voice model, G/D checkpoint or pretrained .pth")
    exp = sub.add_parser("export", help="turn a generator checkpoint into a voice model .pth")
    exp.add_argument("ckpt", help="G checkpoint: ours, RVC's G_*.pth or a {'model': ...} file")
    exp.add_argument("out", help="voice model .pth to write")
    exp.add_argument("--name", required=True, help="model name stored in the metadata")
    exp.add_argument("--epoch", type=int, help="default: the checkpoint's iteration")
    exp.add_argument("--step", type=int, help="global step (default 0)")
    exp.add_argument("--embedder", help="embedder name stored in the metadata (e.g. contentvec)")
    exp.add_argument(
        "--vocoder", choices=vocoder_names(), help="check the detected vocoder against this"
    )
    exp.add_argument("--sr", type=int, help="sample rate, when the tensors cannot tell (RefineGAN)")
    exp.add_argument("--author", help="author stored in the metadata")
    exp.add_argument(
        "--v1-layer", type=int, help="v1: the HuBERT layer the features came from (9 or 12)"
    )
    bl = sub.add_parser("blend", help="average two voice models: (1 - ratio)·A + ratio·B")
    bl.add_argument("a", help="voice model A (ratio 0 gives A)")
    bl.add_argument("b", help="voice model B (ratio 1 gives B)")
    bl.add_argument("out", help="voice model .pth to write")
    bl.add_argument("--ratio", type=float, default=0.5, help="weight of B, in [0, 1] (default 0.5)")
    bl.add_argument("--name", help="model name stored in the metadata (default: A+B)")
    bl.add_argument("--author", help="author stored in the metadata")
    ox = sub.add_parser("onnx", help="export a voice model's synthesizer to ONNX")
    ox.add_argument("model", help="voice model .pth")
    ox.add_argument("out", help=".onnx file to write")
    ox.add_argument(
        "--layout",
        choices=("webui", "w-okada"),
        default="webui",
        help="input names: webui (phone, ..., ds, rnd: noise as an input) or w-okada "
        "(feats, p_len, pitch, pitchf, sid: noise drawn inside); default webui",
    )
    ox.add_argument(
        "--opset", type=int, help="ONNX opset, 13 (the WebUI's) to 17 (default, w-okada's)"
    )
    return p


def _run(args: argparse.Namespace) -> None:
    if args.command == "info":
        _print_table(describe(args.path))
    elif args.command == "export":
        meta = export(
            args.ckpt, args.out, args.name, args.epoch, args.step,
            args.embedder, args.vocoder, args.sr, args.author, args.v1_layer,
        )  # fmt: skip
        f0 = "F0" if meta["f0"] else "no F0"
        print(
            f"wrote {args.out}: {meta['sr']} Hz, {meta['version']}, {f0}, {meta['vocoder']}, "
            f"epoch {meta['epoch']}, sha256 {meta['model_hash'][:16]}…"
        )
    elif args.command == "blend":
        from rvc.io.blend import blend

        meta = blend(args.a, args.b, args.out, args.ratio, args.name, args.author)
        print(f"wrote {args.out}: {meta['info']}, sha256 {meta['model_hash'][:16]}…")
    else:
        from rvc.io.onnx_export import DEFAULT_OPSET, export_onnx

        info = export_onnx(
            args.model, args.out, layout=args.layout, opset=args.opset or DEFAULT_OPSET
        )
        print(f"wrote {args.out}: inputs {', '.join(info['inputs'])} -> {info['output']}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `rvc-model` console script; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        _run(args)
    except Exception as e:  # any bad input: one line, exit 1 (no traceback for users)
        return report(e, "rvc-model")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
