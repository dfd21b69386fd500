"""Convert files: inputs (files, folders, globs, URLs) → converted files, one bad file at a time.

`run(cfg)` is what `infer.py` calls; `convert_files` is the same for Python callers with a
`VoiceConverter` already built.
"""

from __future__ import annotations

import logging
import os
import string
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from rvc.errors import RVCError
from rvc.formats import ANALYSIS_RATE
from rvc.infer.converter import ConversionError, VoiceConverter
from rvc.infer.options import ConvertOptions
from rvc.utils.device import torch_device_type

log = logging.getLogger(__name__)
logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # its INFO lines are not for users
IN_PEAK = 0.95  # the WebUI scales louder inputs down to this peak first
TEMPLATE_FIELDS = ("stem", "voice", "pitch", "index_rate", "format")


class InferError(RVCError, RuntimeError):
    """A problem that stops the whole conversion (model, index, options, output folder)."""


@dataclass
class Converted:
    source: str
    output: Path | None = None
    seconds: float = 0.0  # input duration
    error: str | None = None


@dataclass
class InferResult:
    files: list[Converted] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def written(self) -> list[Converted]:
        return [f for f in self.files if f.error is None]

    @property
    def failed(self) -> list[Converted]:
        return [f for f in self.files if f.error is not None]


def load_input(path: str | os.PathLike) -> np.ndarray:
    """Any media file as 16 kHz mono float32, scaled down to a 0.95 peak if louder."""
    from rvc.audio.read import load_audio

    audio, _ = load_audio(path, sr=ANALYSIS_RATE, min_duration=0.0)
    top = float(np.abs(audio).max(initial=0.0)) / IN_PEAK
    return audio / top if top > 1 else audio


def output_path(
    template: str, out_dir: Path, source: str, voice: str, opts: ConvertOptions, fmt: str
) -> Path:
    """Fill the output name template (fields: stem, voice, pitch, index_rate, format)."""
    names = {f for _, f, _, _ in string.Formatter().parse(template) if f}
    unknown = names - set(TEMPLATE_FIELDS)
    if unknown:
        raise InferError(
            f"output template {template!r}: unknown fields {sorted(unknown)}; use {TEMPLATE_FIELDS}"
        )
    stem = Path(str(source).split("?")[0]).stem or "output"
    name = template.format(
        stem=stem,
        voice=voice,
        pitch=f"{opts.pitch:+g}",
        index_rate=f"{opts.index_rate:g}",
        format=fmt,
    )
    return out_dir / name


def expand_inputs(
    inputs: list[str], downloads: Path
) -> tuple[list[tuple[str, str]], list[Converted]]:
    """(local media file, name to report it by) for every input, URLs downloaded once and
    named by their URL; inputs that cannot be had come back as failures."""
    from rvc.audio.read import find_media
    from rvc.audio.url import download, is_url

    files, failed = [], []
    for item in inputs:
        try:
            if is_url(item):
                files.append((str(download(item, downloads)), str(item)))
            else:
                files.extend((str(p), str(p)) for p in find_media([item]))
        except Exception as e:  # one unreachable URL or bad pattern should not stop the rest
            failed.append(Converted(str(item), error=f"{type(e).__name__}: {e}"))
    return files, failed


def convert_files(
    converter: VoiceConverter,
    inputs: list[str],
    opts: ConvertOptions,
    out_dir: str | os.PathLike,
    template: str = "{stem}_{voice}.{format}",
    fmt: str = "wav",
    output: str | os.PathLike | None = None,
    downloads: str | os.PathLike = "downloads",
    progress: bool = True,
) -> InferResult:
    """Convert every input; a file that fails is reported in the result and the rest go on."""
    from rvc.audio.read import AudioDecodeError
    from rvc.audio.write import save_audio

    start = time.perf_counter()
    files, failed = expand_inputs(list(inputs), Path(downloads))
    if output is not None and len(files) + len(failed) > 1:
        raise InferError(
            f"output={output} names one file but there are {len(files)} inputs; use out_dir"
        )
    result = InferResult(files=failed)
    voice = converter.voice.model_name or "voice"
    rate = opts.output_rate or converter.sample_rate
    for src, label in tqdm(
        files, desc="files", unit="file", disable=not progress or len(files) < 2
    ):
        item = Converted(label)
        result.files.append(item)
        try:
            audio = load_input(src)
            item.seconds = len(audio) / ANALYSIS_RATE
            wav = converter.convert(audio, opts, progress=progress)
            dest = (
                Path(output)
                if output is not None
                else output_path(template, Path(out_dir), label, voice, opts, fmt)
            )
            item.output = save_audio(dest, wav, rate)
        except (AudioDecodeError, ConversionError, OSError, ValueError) as e:
            msg = str(e)
            item.error = msg[len(src) :].lstrip(": ") if msg.startswith(src) else msg
            log.warning("%s: %s", src, item.error)
    result.elapsed = time.perf_counter() - start
    return result


def options_from(cfg: DictConfig) -> ConvertOptions:
    """The conversion knobs of an `infer` config."""
    return ConvertOptions.from_mapping(OmegaConf.to_container(cfg.convert, resolve=True))


def run(cfg: DictConfig) -> InferResult:
    """infer.py: load the voice model, index, embedder and F0, convert every input."""
    from rvc.infer.load import ConverterLoadError, load_converter
    from rvc.utils.hub import MissingModelFileError

    try:
        opts = options_from(cfg)
    except ValueError as e:
        raise InferError(str(e)) from e
    fmt = str(cfg.format).lower().lstrip(".")
    from rvc.audio.write import FORMATS

    if fmt not in FORMATS:
        raise InferError(f"format={fmt}: use one of {', '.join(FORMATS)}")
    device = torch_device_type(cfg.device.accelerator)
    try:
        converter = load_converter(
            cfg.voice, cfg.index_file, cfg.f0, cfg.get("embedder"), device,
            str(cfg.device.get("inference_precision", "fp32")), cfg.device.get("compile", False),
        )  # fmt: skip
    except (ConverterLoadError, MissingModelFileError, FileNotFoundError) as e:
        raise InferError(str(e)) from e
    inputs = (
        cfg.input
        if isinstance(cfg.input, (list, tuple)) or OmegaConf.is_list(cfg.input)
        else [cfg.input]
    )
    return convert_files(
        converter, [str(i) for i in inputs], opts, cfg.out_dir, cfg.output_template, fmt,
        output=cfg.get("output"), downloads=cfg.paths.downloads,
    )  # fmt: skip


def summary(result: InferResult) -> str:
    """What was written and what failed, for the terminal."""
    lines = [f"converted {len(result.written)} file(s) in {result.elapsed:.1f} s"]
    lines += [f"  {f.output}  ({f.seconds:.1f} s of input)" for f in result.written]
    if result.failed:
        lines.append(f"failed {len(result.failed)}:")
        lines += [f"  {f.source}: {f.error}" for f in result.failed]
    return "\n".join(lines)
