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

from torch import nn

from rvc.errors import RVCError
from rvc.formats import khz
from rvc.io.weight_norm_names import from_rvc_names
from rvc.models.layouts import (
    FEATURE_DIMS,
    LAYOUTS,
    SAMPLE_RATES,
    VOICE_MODEL_SEGMENT_FRAMES,
    describe_feature_dims,
    feature_version,
    standard_config,
)
from rvc.models.vocoders import vocoder_classes, vocoder_names
from rvc.models.vocoders.base import Vocoder, child_indices, weight_shape

SEGMENT_FRAMES = VOICE_MODEL_SEGMENT_FRAMES  # the name rvc.io imports
# config items a decoder's `read_state` may give, and their place in the 18-item list
_CONFIG_ITEMS = {
    "resblock_kernel_sizes": 10,
    "upsample_initial_channel": 13,
    "upsample_kernel_sizes": 14,
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


_shape = weight_shape
_indices = child_indices


def _vocoder(keys: set[str], use_f0: bool, where: str) -> tuple[str, type[Vocoder]]:
    """The vocoder option whose decoder's `state_markers` the `dec.*` keys carry, and the
    decoder class for the F0 mode; every option of `conf/vocoder` is asked."""
    dec_keys = [k[len("dec.") :] for k in keys if k.startswith("dec.")]
    found = []
    for name in vocoder_names():
        f0_cls, no_f0_cls = vocoder_classes(name)
        markers = {*f0_cls.state_markers, *(no_f0_cls.state_markers if no_f0_cls else ())}
        if any(k.startswith(tuple(markers)) for k in dec_keys):
            found.append((name, f0_cls, no_f0_cls))
    if len(found) != 1:
        what = (
            "no known decoder"
            if not found
            else f"parts of several decoders ({[f[0] for f in found]})"
        )
        raise ModelDetectionError(
            f"{where}: {what} under 'dec.*'; expected one of {', '.join(vocoder_names())}"
        )
    name, f0_cls, no_f0_cls = found[0]
    if not use_f0 and no_f0_cls is None:
        raise ModelDetectionError(
            f"{where}: a {name} decoder without emb_pitch (no-F0) is not a known layout"
        )
    source = f0_cls.source_markers
    has_source = bool(source) and any(k.startswith(tuple(source)) for k in dec_keys)
    if source and has_source != use_f0:
        raise ModelDetectionError(
            f"{where}: inconsistent F0 mode: emb_pitch {'present' if use_f0 else 'absent'} but the "
            f"{name} decoder {'has' if has_source else 'has no'} NSF source ({source[0].rstrip('.')})"
        )
    return name, f0_cls if use_f0 else no_f0_cls


def detect_traits(state: Mapping[str, Any], where: str = "state dict") -> tuple[str, bool, str]:
    """(version, use_f0, vocoder) of a generator state dict: what does not depend on the rate."""
    version, use_f0, (vocoder, _) = _traits(from_rvc_names(strip_module_prefix(state)), where)
    return version, use_f0, vocoder


def _traits(state: Mapping[str, Any], where: str) -> tuple[str, bool, tuple[str, type[Vocoder]]]:
    if not looks_like_generator(state):
        kind = "a discriminator" if looks_like_discriminator(state) else "not a generator"
        raise ModelDetectionError(f"{where}: {kind} (no 'enc_p.emb_phone' + 'dec.*' tensors)")
    feat_dim = _shape(state, "enc_p.emb_phone")[1]  # Linear weight: [out, in]
    version = feature_version(feat_dim)
    if version is None:
        raise ModelDetectionError(
            f"{where}: emb_phone takes {feat_dim}-dim features; known: {describe_feature_dims()}"
        )
    use_f0 = "enc_p.emb_pitch.weight" in state
    return version, use_f0, _vocoder(set(state), use_f0, where)


def detect_generator(
    state: Mapping[str, Any], sample_rate: int | None = None, where: str = "state dict"
) -> DetectedGenerator:
    """Sample rate, version, F0 mode, vocoder and `config` of a generator state dict.

    Accepts RVC (`weight_g/weight_v`) or parametrization names. `sample_rate` is a hint, needed
    only when the tensors fit several rates: RefineGAN stores little that is rate-specific, and
    a no-F0 v1 voice model (no enc_q, no noise convs) fits both v1 32k and v1 48k.
    """
    state = from_rvc_names(strip_module_prefix(state))
    version, use_f0, (vocoder, decoder) = _traits(state, where)
    hidden, feat_dim = _shape(state, "enc_p.emb_phone")  # Linear weight: [out, in]
    # what the decoder's own tensors say (its class knows its names)
    facts = decoder.read_state(
        {k[len("dec.") :]: v for k, v in state.items() if k.startswith("dec.")}
    )

    # --- the layout: keep the (version, rate) layouts every stored clue allows
    candidates = list(LAYOUTS.items())  # [((version, sr), Layout)]
    clues = []
    kernels = facts.get("upsample_kernel_sizes")
    if kernels is not None:
        candidates = [c for c in candidates if list(c[1].upsample_kernel_sizes) == kernels]
        clues.append(f"upsample kernels {kernels}")
    noise = facts.get("noise_conv_kernels")
    if noise:
        candidates = [c for c in candidates if c[1].noise_conv_kernels() == noise]
        clues.append(f"NSF noise-conv kernels {noise}")
    stages = facts.get("n_stages")
    if stages is not None:
        candidates = [c for c in candidates if len(c[1].upsample_rates) == stages]
        if kernels is None:  # else the kernels already said it
            clues.append(f"{stages} upsampling stages")
    enc_q_pre = _shape(state, "enc_q.pre")  # Conv1d(n_fft // 2 + 1, hidden, 1)
    if enc_q_pre is not None:
        candidates = [c for c in candidates if c[1].spec_channels == enc_q_pre[1]]
        clues.append(f"{enc_q_pre[1]} spectrogram bins (enc_q)")
    if not candidates:
        raise ModelDetectionError(
            f"{where}: no RVC {'/'.join(FEATURE_DIMS)} layout at "
            f"{'/'.join(khz(r) for r in SAMPLE_RATES)} fits {' and '.join(clues)}"
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
    for key, item in _CONFIG_ITEMS.items():
        if facts.get(key) is not None:
            config[item] = facts[key]
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


def check_detectable(generator: nn.Module, where: str = "generator") -> None:
    """Fail now, not at the first export an epoch later, if the tensors of a freshly built
    generator do not read back as what it was built with: its vocoder and F0 mode, its
    version, and the config items its decoder's `read_state` gives."""
    state = from_rvc_names(generator.state_dict())
    version, use_f0, (vocoder, decoder) = _traits(state, where)
    built = (feature_version(generator.text_enc_hidden_dim), generator.use_f0, generator.vocoder)
    if (version, use_f0, vocoder) != built:
        raise ModelDetectionError(
            f"{where}: built as {built} (version, F0, vocoder) but its tensors read as "
            f"{(version, use_f0, vocoder)}: check the vocoder's `state_markers` and YAML `name`"
        )
    facts = decoder.read_state(
        {k[len("dec.") :]: v for k, v in state.items() if k.startswith("dec.")}
    )
    config = generator.config
    wrong = [
        f"{key} {facts[key]} (built {config[item]})"
        for key, item in _CONFIG_ITEMS.items()
        if facts.get(key) is not None and list(_listed(facts[key])) != list(_listed(config[item]))
    ]
    if facts.get("n_stages") is not None and facts["n_stages"] != len(config[12]):
        wrong.append(f"n_stages {facts['n_stages']} (built {len(config[12])})")
    if wrong:
        raise ModelDetectionError(
            f"{where}: {decoder.__name__}.read_state reads {', '.join(wrong)} from the tensors "
            "of the generator it built; a .pth of it would not load back"
        )


def _listed(value: Any) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _shape_param(state: Mapping[str, Any], key: str) -> tuple[int, ...] | None:
    t = state.get(key)
    return None if t is None else tuple(t.shape)
