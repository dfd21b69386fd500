"""The `pretrained` config group: where a run's starting G/D weights come from.

`default`: the published files for the vocoder and sample rate (docs/formats.md §2), as the
`pretrained` table of the vocoder's `conf/vocoder/<x>.yaml` lists them, through
`rvc.utils.hub.resolve_file` (local hub cache first, optional sha256 check); `none`: train from
scratch; `custom`: local G/D paths. Each option is a `PretrainedSource` whose
`resolve(vocoder, sample_rate, use_f0, version)` gives the paths and `load_into(G, D, ...)`
loads them, refusing files whose tensors do not fit the networks.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from rvc.errors import RVCError
from rvc.formats import APPLIO_REPO, file_sha256, khz
from rvc.io.checkpoints import ArchitectureMismatchError, load_model_state, load_state_checked
from rvc.io.detect import ModelDetectionError, detect_generator, discriminator_count
from rvc.io.safe_load import ModelFileError
from rvc.models.vocoders import VocoderError, vocoder_option
from rvc.utils.hub import MissingModelFileError, resolve_file


class PretrainedNotAvailableError(RVCError, ValueError):
    """No published pretrained exists for this vocoder / sample rate / F0 / version."""


@dataclass(frozen=True)
class PretrainedPaths:
    """Local files to start from; `None` = that network starts from random weights."""

    generator: Path | None = None
    discriminator: Path | None = None


def pretrained_key(version: str, use_f0: bool, sample_rate: int) -> str:
    """The key of a vocoder YAML's `pretrained` table: "v2_f0_40k", "v1_nof0_48k"."""
    return f"{version}_{'f0' if use_f0 else 'nof0'}_{khz(int(sample_rate))}"


def default_pretrained_files(
    vocoder: str, sample_rate: int, use_f0: bool = True, version: str = "v2"
) -> tuple[str, str, str]:
    """(hub repo id, G filename, D filename) of the published pretrained, from the vocoder's
    `conf/vocoder` table, or a clear error naming what is published."""
    try:
        table = vocoder_option(vocoder).get("pretrained") or {}
    except VocoderError as e:
        raise PretrainedNotAvailableError(str(e)) from None
    entry = table.get(pretrained_key(version, use_f0, sample_rate))
    if entry is not None:
        repo, g_file, d_file = (str(v) for v in entry)
        return repo, g_file, d_file
    fix = "use `pretrained=none` or `pretrained=custom` with your own G/D files"
    if not table:
        raise PretrainedNotAvailableError(
            f"no published pretrained exists for the {vocoder} vocoder; {fix}"
        )
    published = ", ".join(
        k.replace("_", " ").replace("nof0", "no F0").replace("f0", "F0") for k in table
    )
    raise PretrainedNotAvailableError(
        f"the published {vocoder} pretrained are {published} only (asked: {version}, "
        f"{'F0' if use_f0 else 'no F0'}, {khz(int(sample_rate))}); pick one of those, or {fix}"
    )


def _describe(state: Mapping) -> str:
    """A short description of what a G/D state dict was built for, for mismatch errors."""
    try:
        d = detect_generator(state)
        return f" (the file holds a {d.version} {d.vocoder} generator at {d.sample_rate} Hz, {'F0' if d.use_f0 else 'no F0'})"
    except ModelDetectionError:
        n = discriminator_count(state)
        return f" (the file holds a discriminator with {n} sub-discriminators)" if n else ""


def load_pretrained(
    paths: PretrainedPaths, generator: nn.Module | None, discriminator: nn.Module | None = None
) -> None:
    """Load the pretrained G/D into the networks; `ArchitectureMismatchError` if they differ."""
    for path, net in ((paths.generator, generator), (paths.discriminator, discriminator)):
        if path is None or net is None:
            continue
        state = load_model_state(path)
        try:
            load_state_checked(net, state, f"pretrained {path}")
        except ArchitectureMismatchError as e:
            # a base model trained on more than RVC's 109 speakers (docs/base_models.md)
            hint = (
                "; for a base with more speaker rows set model.synthesizer.spk_embed_dim=auto"
                if "emb_g.weight (" in str(e)
                else ""
            )
            raise ArchitectureMismatchError(f"{e}{_describe(state)}{hint}") from None


class PretrainedSource:
    """Base of the `pretrained` options: resolve paths, then load them into G and D."""

    def resolve(
        self, vocoder: str, sample_rate: int, use_f0: bool = True, version: str = "v2"
    ) -> PretrainedPaths:
        """Local G/D paths for this architecture."""
        raise NotImplementedError

    def load_into(
        self,
        generator: nn.Module | None,
        discriminator: nn.Module | None,
        *,
        vocoder: str,
        sample_rate: int,
        use_f0: bool = True,
        version: str = "v2",
    ) -> PretrainedPaths:
        """Resolve and load; returns the paths used."""
        paths = self.resolve(vocoder, sample_rate, use_f0, version)
        load_pretrained(paths, generator, discriminator)
        return paths


class NoPretrained(PretrainedSource):
    """Train from random weights."""

    def resolve(
        self, vocoder: str, sample_rate: int, use_f0: bool = True, version: str = "v2"
    ) -> PretrainedPaths:
        """No files."""
        return PretrainedPaths()


class DefaultPretrained(PretrainedSource):
    """The published pretrained for the vocoder and sample rate, from the hub (cache first)."""

    def __init__(
        self,
        repo_id: str = APPLIO_REPO,
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        sha256: Mapping[str, str] | None = None,
        discriminator: bool = True,
    ) -> None:
        self.repo_id = repo_id
        self.revision = revision
        self.cache_dir = cache_dir
        self.sha256 = dict(sha256 or {})  # hub filename -> expected sha256 hex
        self.discriminator = discriminator

    def _fetch(self, repo_id: str, filename: str) -> Path:
        # a mirror repo replaces Applio's; lj1995 files keep their own repo
        repo = self.repo_id if repo_id == APPLIO_REPO else repo_id
        path = resolve_file(repo, filename, revision=self.revision, cache_dir=self.cache_dir)
        expected = self.sha256.get(filename) or self.sha256.get(Path(filename).name)
        if expected:
            actual = file_sha256(path)
            if actual.lower() != str(expected).lower():
                raise ModelFileError(
                    f"{path}: sha256 {actual} does not match the expected {expected} for "
                    f"'{filename}'; the download may be damaged: delete it and fetch it again"
                )
        return path

    def resolve(
        self, vocoder: str, sample_rate: int, use_f0: bool = True, version: str = "v2"
    ) -> PretrainedPaths:
        """Hub files for this architecture; `MissingModelFileError` offline without a cache."""
        repo_id, g_file, d_file = default_pretrained_files(vocoder, sample_rate, use_f0, version)
        g = self._fetch(repo_id, g_file)
        d = self._fetch(repo_id, d_file) if self.discriminator else None
        return PretrainedPaths(g, d)


class CustomPretrained(PretrainedSource):
    """Local G and/or D files (e.g. a community pretrained)."""

    def __init__(
        self,
        generator: str | os.PathLike | None = None,
        discriminator: str | os.PathLike | None = None,
    ) -> None:
        if not generator and not discriminator:
            raise ValueError("pretrained=custom needs a generator and/or a discriminator path")
        self.generator = Path(generator).expanduser() if generator else None
        self.discriminator = Path(discriminator).expanduser() if discriminator else None

    def resolve(
        self, vocoder: str, sample_rate: int, use_f0: bool = True, version: str = "v2"
    ) -> PretrainedPaths:
        """The given files, which must exist."""
        for p in (self.generator, self.discriminator):
            if p is not None and not p.is_file():
                raise MissingModelFileError(f"custom pretrained file not found: {p}")
        return PretrainedPaths(self.generator, self.discriminator)


class VoiceModelPretrained(PretrainedSource):
    """Fine-tune from a voice `.pth` you already have: G from the voice model (it has no
    `enc_q`, which starts fresh), D from the published pretrained (`default`), none, or a file."""

    def __init__(
        self,
        voice_model: str | os.PathLike,
        discriminator: str | os.PathLike | None = "default",
        default: DefaultPretrained | None = None,
    ) -> None:
        self.voice_model = Path(voice_model).expanduser()
        self.discriminator = discriminator
        self.default = default or DefaultPretrained()

    def _check(self, vocoder: str, sample_rate: int, use_f0: bool, version: str):
        from rvc.io.voice_model import read_voice_model

        if not self.voice_model.is_file():
            raise MissingModelFileError(f"voice model to fine-tune not found: {self.voice_model}")
        vm = read_voice_model(self.voice_model)
        have = (vm.vocoder, vm.sample_rate, vm.use_f0, vm.version)
        want = (vocoder, int(sample_rate), bool(use_f0), version)
        if have != want:
            fmt = "{} at {} Hz, {}, {}"
            raise ArchitectureMismatchError(
                f"{self.voice_model}: the voice model is "
                f"{fmt.format(have[0], have[1], 'F0' if have[2] else 'no F0', have[3])} but the "
                f"run trains {fmt.format(want[0], want[1], 'F0' if want[2] else 'no F0', want[3])}; "
                "pick the matching vocoder=, model= and embedder= (v1: 256-dim features)"
            )
        return vm

    def resolve(
        self, vocoder: str, sample_rate: int, use_f0: bool = True, version: str = "v2"
    ) -> PretrainedPaths:
        """The voice model and the discriminator file (None: D starts from random weights)."""
        self._check(vocoder, sample_rate, use_f0, version)
        d = self.discriminator
        if d in (None, "none", "null"):
            d_path = None
        elif d == "default":
            d_path = self.default.resolve(vocoder, sample_rate, use_f0, version).discriminator
        else:
            d_path = Path(d).expanduser()
            if not d_path.is_file():
                raise MissingModelFileError(f"discriminator file not found: {d_path}")
        return PretrainedPaths(self.voice_model, d_path)

    def load_into(
        self,
        generator: nn.Module | None,
        discriminator: nn.Module | None,
        *,
        vocoder: str,
        sample_rate: int,
        use_f0: bool = True,
        version: str = "v2",
    ) -> PretrainedPaths:
        """G from the voice model (`enc_q` kept fresh), D as resolved."""
        vm = self._check(vocoder, sample_rate, use_f0, version)
        paths = self.resolve(vocoder, sample_rate, use_f0, version)
        if generator is not None:
            state = {k: v.float() for k, v in vm.weights.items()}  # fp16 in the file
            load_state_checked(generator, state, str(self.voice_model), ignore_missing=("enc_q.",))
        load_pretrained(PretrainedPaths(None, paths.discriminator), None, discriminator)
        return paths
