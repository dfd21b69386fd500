"""Recognise a generator's configuration from the names and shapes of its tensors.

A bare state dict (an RVC `G_*.pth`, a pretrained `f0G40k.pth`, an Applio checkpoint) does not
say which sample rate, feature version, F0 mode or vocoder it was built for; the shapes do:
the upsample kernels give the sample rate (FORMATS.md §4), `emb_phone` the feature width,
`emb_pitch` the F0 mode and the `dec.*` module names the vocoder.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rvc.io.weight_norm_names import from_rvc_names

# FORMATS.md §4: sample rate -> (n_fft, upsample_rates, upsample_kernel_sizes)
SR_TABLE: dict[int, tuple[int, list[int], list[int]]] = {
    32000: (1024, [10, 8, 2, 2], [20, 16, 4, 4]),
    40000: (2048, [10, 10, 2, 2], [16, 16, 4, 4]),
    48000: (2048, [12, 10, 2, 2], [24, 20, 4, 4]),
}
VERSION_DIMS = {"v1": 256, "v2": 768}
SEGMENT_FRAMES = 32  # config[1]; RVC writes 32 whatever the rate, unused at inference

_VOCODER_MARKERS = {
    "HiFi-GAN": ("dec.ups.", "dec.resblocks."),
    "MRF HiFi-GAN": ("dec.upsamples.", "dec.mrfs."),
    "RefineGAN": ("dec.downsample_blocks.", "dec.upsample_conv_blocks.", "dec.mel_conv."),
}


class ModelDetectionError(ValueError):
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


def standard_config(sample_rate: int, spk_embed_dim: int = 109) -> list:
    """The 18-item RVC `config` list (FORMATS.md §1) for a standard sample rate."""
    if sample_rate not in SR_TABLE:
        raise ValueError(f"unsupported sample rate {sample_rate}; choose one of {sorted(SR_TABLE)}")
    n_fft, rates, kernels = SR_TABLE[sample_rate]
    return [
        n_fft // 2 + 1, SEGMENT_FRAMES, 192, 192, 768, 2, 6, 3, 0, "1",
        [3, 7, 11], [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
        list(rates), 512, list(kernels), spk_embed_dim, 256, sample_rate,
    ]  # fmt: skip


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
    only when the tensors fit several rates (RefineGAN stores nothing rate-specific).
    """
    version, use_f0, vocoder = detect_traits(state, where)
    state = from_rvc_names(strip_module_prefix(state))
    hidden, feat_dim = _shape(state, "enc_p.emb_phone")  # Linear weight: [out, in]

    # --- sample rate: intersect what each clue allows
    candidates = set(SR_TABLE)
    clues = []
    kernels = _upsample_kernels(state, vocoder)
    if kernels is not None:
        candidates &= {sr for sr, (_, _, k) in SR_TABLE.items() if k == kernels}
        clues.append(f"upsample kernels {kernels}")
    enc_q_pre = _shape(state, "enc_q.pre")  # Conv1d(n_fft // 2 + 1, hidden, 1)
    if enc_q_pre is not None:
        candidates &= {
            sr for sr, (n_fft, _, _) in SR_TABLE.items() if n_fft // 2 + 1 == enc_q_pre[1]
        }
        clues.append(f"{enc_q_pre[1]} spectrogram bins (enc_q)")
    if not candidates:
        raise ModelDetectionError(f"{where}: no standard sample rate fits {' and '.join(clues)}")
    if sample_rate is not None:
        if int(sample_rate) not in candidates:
            raise ModelDetectionError(
                f"{where}: sample rate {sample_rate} does not fit the tensors "
                f"({' and '.join(clues) or 'no clue'} allow {sorted(candidates)})"
            )
        candidates = {int(sample_rate)}
    if len(candidates) > 1:
        raise AmbiguousModelError(
            f"{where}: cannot tell the sample rate of this {vocoder} generator from its tensors "
            f"(could be {', '.join(str(c) for c in sorted(candidates))}); give it explicitly (--sr)"
        )
    sr = candidates.pop()

    # --- the 18-item config, from shapes where they say it, else the standard value
    config = standard_config(sr)
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
