"""Recognise a generator's configuration from the names and shapes of its tensors.

A bare state dict (an RVC `G_*.pth`, a pretrained `f0G40k.pth`, an Applio checkpoint) does not
say which sample rate, feature version, F0 mode or vocoder it was built for; the shapes do:
`emb_phone` gives the feature width (the version), `emb_pitch` the F0 mode, the `dec.*` module
names the vocoder, and the layout (`rvc.models.layouts`, per version and rate) is the one whose
upsample kernels, NSF noise-conv kernels, stage count and `enc_q` bins fit. v1 32k and 48k share
their kernels: a G checkpoint tells them apart by `enc_q.pre` (513 vs 1025 bins), an F0 model by
`dec.noise_convs.0`; a no-F0 v1 voice model needs its file's rate (the `sample_rate` hint).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rvc.errors import RVCError
from rvc.io.weight_norm_names import from_rvc_names
from rvc.models.layouts import FEATURE_DIMS, LAYOUTS, VOICE_MODEL_SEGMENT_FRAMES, standard_config

VERSION_DIMS = FEATURE_DIMS  # the names rvc.io imports
SEGMENT_FRAMES = VOICE_MODEL_SEGMENT_FRAMES

_VOCODER_MARKERS = {
    "HiFi-GAN": ("dec.ups.", "dec.resblocks."),
    "MRF HiFi-GAN": ("dec.upsamples.", "dec.mrfs."),
    "RefineGAN": ("dec.downsample_blocks.", "dec.upsample_conv_blocks.", "dec.mel_conv."),
}


class ModelDetectionError(RVCError, ValueError):
    """The tensors do not identify one known generator configuration."""


class AmbiguousModelError(ModelDetectionError):
    """Several configurations fit the tensors; a hint (e.g. the sample rate) is needed."""


@dataclass(frozen=True)
class DetectedGenerator:
    """What a generator state dict was built for, and the 18-item `config` that rebuilds it."""

    sample_rate: int
    version: str
    use_f0: bool
    vocoder: str
    config: list
    text_enc_hidden_dim: int
    has_enc_q: bool


def strip_module_prefix(state: Mapping[str, Any]) -> dict[str, Any]:
    """Drop a DDP `module.` prefix carried by every key."""
    if state and all(isinstance(k, str) and k.startswith("module.") for k in state):
        return {k[len("module.") :]: v for k, v in state.items()}
    return dict(state)


def looks_like_generator(state: Mapping[str, Any]) -> bool:
    """True for a synthesizer state dict (text encoder + decoder)."""
    keys = strip_module_prefix(state)
    return "enc_p.emb_phone.weight" in keys and any(k.startswith("dec.") for k in keys)


def looks_like_discriminator(state: Mapping[str, Any]) -> bool:
    """True for a multi-period discriminator state dict."""
    return any(str(k).startswith("discriminators.") for k in strip_module_prefix(state))


def discriminator_count(state: Mapping[str, Any]) -> int:
    """Number of sub-discriminators (`discriminators.N`): 7 in v1, 9 in v2/v3."""
    ids = {
        int(m.group(1))
        for k in strip_module_prefix(state)
        if (m := re.match(r"discriminators\.(\d+)\.", str(k)))
    }
    return len(ids)


def _shape(state: Mapping[str, Any], prefix: str) -> tuple[int, ...] | None:
    """Shape of a module's (direction) weight, whether or not it is weight-normed."""
    for suffix in (".weight", ".parametrizations.weight.original1"):
        t = state.get(prefix + suffix)
        if t is not None:
            return tuple(t.shape)
    return None


def _indices(state: Mapping[str, Any], prefix: str) -> list[int]:
    """Sorted N of the keys `prefix.N.…`."""
    pat = re.compile(re.escape(prefix) + r"\.(\d+)\.")
    return sorted({int(m.group(1)) for k in state if (m := pat.match(k))})


def _vocoder(keys: set[str], use_f0: bool, where: str) -> str:
    found = [
        name
        for name, markers in _VOCODER_MARKERS.items()
        if any(k.startswith(markers) for k in keys)
    ]
    if len(found) != 1:
        what = "no known decoder" if not found else f"parts of several decoders ({found})"
        raise ModelDetectionError(
            f"{where}: {what} under 'dec.*'; expected one of HiFi-GAN, MRF HiFi-GAN, RefineGAN"
        )
    name = found[0]
    has_source = any(k.startswith("dec.m_source.") for k in keys)
    if name == "HiFi-GAN" and has_source != use_f0:
        raise ModelDetectionError(
            f"{where}: inconsistent F0 mode: emb_pitch {'present' if use_f0 else 'absent'} but the "
            f"HiFi-GAN decoder {'has' if has_source else 'has no'} NSF source (m_source)"
        )
    if name != "HiFi-GAN" and not use_f0:
        raise ModelDetectionError(
            f"{where}: a {name} decoder without emb_pitch (no-F0) is not a known layout"
        )
    return name


def _upsample_kernels(state: Mapping[str, Any], vocoder: str) -> list[int] | None:
    prefix = {"HiFi-GAN": "dec.ups", "MRF HiFi-GAN": "dec.upsamples"}.get(vocoder)
    if prefix is None:  # RefineGAN upsamples by interpolation: nothing rate-specific is stored
        return None
    # ConvTranspose1d weight: [in, out, kernel]
    return [_shape(state, f"{prefix}.{i}")[2] for i in _indices(state, prefix)]


def _noise_conv_kernels(state: Mapping[str, Any]) -> list[int] | None:
    """Kernels of the NSF `dec.noise_convs.N` (HiFi-GAN NSF, MRF), None without a source."""
    ids = _indices(state, "dec.noise_convs")
    return [_shape(state, f"dec.noise_convs.{i}")[2] for i in ids] or None


def _resblock_kernels(state: Mapping[str, Any], vocoder: str, n_ups: int) -> list[int]:
    if vocoder == "HiFi-GAN":
        ids = _indices(state, "dec.resblocks")
        n = len(ids) // max(n_ups, 1)
        return [_shape(state, f"dec.resblocks.{i}.convs1.0")[2] for i in ids[:n]]
    if vocoder == "MRF HiFi-GAN":
        ids = _indices(state, "dec.mrfs.0")
        return [_shape(state, f"dec.mrfs.0.{i}.layers.0.conv1")[2] for i in ids]
    # RefineGAN: parallel branches `upsample_conv_blocks.0.blocks.M.1` (ResBlock after AdaIN)
    ids = _indices(state, "dec.upsample_conv_blocks.0.blocks")
    shapes = [_shape(state, f"dec.upsample_conv_blocks.0.blocks.{i}.1.convs1.0") for i in ids]
    return [s[2] for s in shapes] if ids and all(shapes) else [3, 7, 11]


def detect_traits(state: Mapping[str, Any], where: str = "state dict") -> tuple[str, bool, str]:
    """(version, use_f0, vocoder) of a generator state dict: what does not depend on the rate."""
    state = from_rvc_names(strip_module_prefix(state))
    if not looks_like_generator(state):
        kind = "a discriminator" if looks_like_discriminator(state) else "not a generator"
        raise ModelDetectionError(f"{where}: {kind} (no 'enc_p.emb_phone' + 'dec.*' tensors)")
    feat_dim = _shape(state, "enc_p.emb_phone")[1]  # Linear weight: [out, in]
    versions = [v for v, d in VERSION_DIMS.items() if d == feat_dim]
    if not versions:
        raise ModelDetectionError(
            f"{where}: emb_phone takes {feat_dim}-dim features; known: 256 (v1), 768 (v2)"
        )
    use_f0 = "enc_p.emb_pitch.weight" in state
    return versions[0], use_f0, _vocoder(set(state), use_f0, where)


def detect_generator(
    state: Mapping[str, Any], sample_rate: int | None = None, where: str = "state dict"
) -> DetectedGenerator:
    """Sample rate, version, F0 mode, vocoder and `config` of a generator state dict.

    Accepts RVC (`weight_g/weight_v`) or parametrization names. `sample_rate` is a hint, needed
    only when the tensors fit several rates: RefineGAN stores little that is rate-specific, and
    a no-F0 v1 voice model (no enc_q, no noise convs) fits both v1 32k and v1 48k.
    """
    version, use_f0, vocoder = detect_traits(state, where)
    state = from_rvc_names(strip_module_prefix(state))
    hidden, feat_dim = _shape(state, "enc_p.emb_phone")  # Linear weight: [out, in]

    # --- the layout: keep the (version, rate) layouts every stored clue allows
    candidates = list(LAYOUTS.items())  # [((version, sr), Layout)]
    clues = []
    kernels = _upsample_kernels(state, vocoder)
    if kernels is not None:
        candidates = [c for c in candidates if list(c[1].upsample_kernel_sizes) == kernels]
        clues.append(f"upsample kernels {kernels}")
    noise = _noise_conv_kernels(state)
    if noise:
        candidates = [c for c in candidates if c[1].noise_conv_kernels() == noise]
        clues.append(f"NSF noise-conv kernels {noise}")
    if vocoder == "RefineGAN":  # one downsample block per upsampling stage
        stages = len(_indices(state, "dec.downsample_blocks"))
        candidates = [c for c in candidates if len(c[1].upsample_rates) == stages]
        clues.append(f"{stages} upsampling stages")
    enc_q_pre = _shape(state, "enc_q.pre")  # Conv1d(n_fft // 2 + 1, hidden, 1)
    if enc_q_pre is not None:
        candidates = [c for c in candidates if c[1].spec_channels == enc_q_pre[1]]
        clues.append(f"{enc_q_pre[1]} spectrogram bins (enc_q)")
    if not candidates:
        raise ModelDetectionError(
            f"{where}: no RVC v1/v2 layout at 32k/40k/48k fits {' and '.join(clues)}"
        )
    rates = sorted({lay.sample_rate for _, lay in candidates})
    if sample_rate is not None:
        if int(sample_rate) not in rates:
            raise ModelDetectionError(
                f"{where}: sample rate {sample_rate} does not fit the tensors "
                f"({' and '.join(clues) or 'no clue'} allow {rates})"
            )
        rates = [int(sample_rate)]
    if len(rates) > 1:
        raise AmbiguousModelError(
            f"{where}: cannot tell the sample rate of this {version} {vocoder} generator from its "
            f"tensors (could be {', '.join(str(r) for r in rates)}); give it explicitly (--sr)"
        )
    sr = rates[0]
    fits = [key for key, lay in candidates if lay.sample_rate == sr]
    # the file's own version's layout when it fits; else the other (this project trained v1
    # features in the v2 layout before the layout followed the version)
    layout_version = version if (version, sr) in fits else fits[0][0]

    # --- the 18-item config, from shapes where they say it, else the standard value
    config = standard_config(sr, layout_version)
    proj = _shape(state, "enc_p.proj")  # Conv1d(hidden, 2 * inter, 1): [2 * inter, hidden, 1]
    ffn = _shape(state, "enc_p.encoder.ffn_layers.0.conv_1")  # [filter, hidden, kernel]
    # relative position embedding, shared by heads: [1, 2 * window + 1, hidden // n_heads]
    rel = _shape_param(state, "enc_p.encoder.attn_layers.0.emb_rel_k")
    emb_g = _shape(state, "emb_g")  # [spk_embed_dim, gin]
    if proj is None or ffn is None or rel is None or emb_g is None:
        raise ModelDetectionError(f"{where}: missing text-encoder or speaker-embedding tensors")
    config[2], config[3] = proj[0] // 2, hidden
    config[4], config[7] = ffn[0], ffn[2]
    config[5] = hidden // rel[2]
    config[6] = len(_indices(state, "enc_p.encoder.attn_layers"))
    config[15], config[16] = emb_g[0], emb_g[1]
    if enc_q_pre is not None:
        config[0] = enc_q_pre[1]
    if vocoder == "RefineGAN":
        mel = _shape(state, "dec.mel_conv")  # Conv1d(inter, upsample_initial_channel // 2, 7)
        if mel is not None:
            config[13] = mel[0] * 2
    else:
        pre = _shape(state, "dec.conv_pre")  # Conv1d(inter, upsample_initial_channel, 7)
        config[13] = pre[0]
    config[10] = _resblock_kernels(state, vocoder, len(kernels or []))
    # dilations are not stored; RVC uses (1, 3, 5) for every kernel
    config[11] = [[1, 3, 5] for _ in config[10]]
    return DetectedGenerator(
        sample_rate=sr,
        version=version,
        use_f0=use_f0,
        vocoder=vocoder,
        config=config,
        text_enc_hidden_dim=feat_dim,
        has_enc_q=enc_q_pre is not None,
    )


def _shape_param(state: Mapping[str, Any], key: str) -> tuple[int, ...] | None:
    t = state.get(key)
    return None if t is None else tuple(t.shape)
