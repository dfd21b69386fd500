"""RVC's model layouts per (feature version, sample rate): the one table of sizes.

RVC v1 and v2 differ in more than the feature width: at 32k and 48k the v1 generator upsamples
in five stages (RVC WebUI `configs/v1/*.json`, the published `pretrained/f0G32k.pth` …), v2 in
four (`configs/v2/*.json`, `pretrained_v2/`, Applio's `Resources/pretrained_v2/`); at 40k both
are the same. `conf/model/*` read their sizes from here through the `${layout:...}` config
resolver, so `embedder.version=v1 model=48k` builds the network the v1 48k pretrained fits;
`rvc.io.detect` matches tensors against the same table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

# content-feature width per version: v1 = HuBERT layer 9 through final_proj, v2 = last layer
FEATURE_DIMS: dict[str, int] = {"v1": 256, "v2": 768}
# config[1] as RVC writes a voice model's config: 32 whatever the rate (unused at inference)
VOICE_MODEL_SEGMENT_FRAMES = 32


@dataclass(frozen=True)
class Layout:
    """What depends on the (version, sample rate) of an RVC model."""

    sample_rate: int
    n_fft: int  # = win_length
    hop_length: int
    n_mels: int
    segment_samples: int  # the training crop
    upsample_rates: tuple[int, ...]
    upsample_kernel_sizes: tuple[int, ...]

    @property
    def spec_channels(self) -> int:
        """Linear-spectrogram bins (enc_q's input)."""
        return self.n_fft // 2 + 1

    @property
    def segment_frames(self) -> int:
        """The training crop in frames (Synthesizer's `segment_size`)."""
        return self.segment_samples // self.hop_length

    def noise_conv_kernels(self) -> list[int]:
        """Kernel of each NSF `noise_convs.N`, which brings the source down by the product of
        the later rates: stored in the tensors, so it tells layouts apart."""
        n = len(self.upsample_rates)
        return [noise_conv_kernel(math.prod(self.upsample_rates[i + 1 :])) for i in range(n)]


def noise_conv_kernel(stride: int) -> int:
    """RVC's NSF noise-conv kernel for a downsampling `stride` (1: a pointwise conv)."""
    return 1 if stride == 1 else stride * 2 - stride % 2


# RVC WebUI configs/v1/{32k,40k,48k}.json and configs/v2/{32k,48k}.json (v2 40k = v1 40k)
_V1_32K = Layout(32000, 1024, 320, 80, 12800, (10, 4, 2, 2, 2), (16, 16, 4, 4, 4))
_V2_32K = Layout(32000, 1024, 320, 80, 12800, (10, 8, 2, 2), (20, 16, 4, 4))
_40K = Layout(40000, 2048, 400, 125, 12800, (10, 10, 2, 2), (16, 16, 4, 4))
_V1_48K = Layout(48000, 2048, 480, 128, 11520, (10, 6, 2, 2, 2), (16, 16, 4, 4, 4))
_V2_48K = Layout(48000, 2048, 480, 128, 17280, (12, 10, 2, 2), (24, 20, 4, 4))
LAYOUTS: dict[tuple[str, int], Layout] = {
    ("v1", 32000): _V1_32K,
    ("v1", 40000): _40K,
    ("v1", 48000): _V1_48K,
    ("v2", 32000): _V2_32K,
    ("v2", 40000): _40K,
    ("v2", 48000): _V2_48K,
}
SAMPLE_RATES = tuple(sorted({sr for _, sr in LAYOUTS}))

# the same in every layout (docs/formats.md §4), in the order of the 18-item config
SHARED_SIZES: dict[str, object] = {
    "inter_channels": 192,
    "hidden_channels": 192,
    "filter_channels": 768,
    "n_heads": 2,
    "n_layers": 6,
    "kernel_size": 3,
    "p_dropout": 0,
    "resblock": "1",
    "resblock_kernel_sizes": [3, 7, 11],
    "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
    "upsample_initial_channel": 512,
    "spk_embed_dim": 109,
    "gin_channels": 256,
}


def layout(version: str, sample_rate: int | str) -> Layout:
    """The layout of an RVC `version` model at `sample_rate`, or a clear error."""
    version = str(version)
    if version not in FEATURE_DIMS:
        raise ValueError(f"unknown RVC version {version!r}; choose v1 or v2")
    try:
        sr = int(sample_rate)
    except (TypeError, ValueError):
        sr = None
    if (version, sr) not in LAYOUTS:
        raise ValueError(
            f"no RVC {version} layout at {sample_rate} Hz; choose one of "
            f"{', '.join(str(s) for s in SAMPLE_RATES)}"
        )
    return LAYOUTS[version, sr]


def standard_config(sample_rate: int, version: str = "v2", spk_embed_dim: int = 109) -> list:
    """The 18-item RVC `config` list (docs/formats.md §1) of a published-size `version` model."""
    lay = layout(version, sample_rate)
    s = SHARED_SIZES
    return [
        lay.spec_channels, VOICE_MODEL_SEGMENT_FRAMES, s["inter_channels"], s["hidden_channels"],
        s["filter_channels"], s["n_heads"], s["n_layers"], s["kernel_size"], s["p_dropout"],
        s["resblock"], list(s["resblock_kernel_sizes"]),
        [list(d) for d in s["resblock_dilation_sizes"]], list(lay.upsample_rates),
        s["upsample_initial_channel"], list(lay.upsample_kernel_sizes), spk_embed_dim,
        s["gin_channels"], lay.sample_rate,
    ]  # fmt: skip


_FIELDS = {f.name for f in fields(Layout)} | {"spec_channels", "segment_frames"}


def layout_value(version: str, sample_rate: int | str, key: str):
    """One value of a layout, as the `${layout:version,sample_rate,key}` resolver gives it."""
    if key not in _FIELDS:
        raise KeyError(f"${{layout:...}}: no layout value {key!r}; known: {sorted(_FIELDS)}")
    value = getattr(layout(version, sample_rate), key)
    return list(value) if isinstance(value, tuple) else value


def feature_dim(version: str) -> int:
    """The content-feature width RVC `version` models take."""
    if str(version) not in FEATURE_DIMS:
        raise ValueError(f"unknown RVC version {version!r}; choose v1 or v2")
    return FEATURE_DIMS[str(version)]


def feature_version(dim: int) -> str | None:
    """The RVC version whose models take `dim`-dim content features (None: no such version)."""
    return next((v for v, d in FEATURE_DIMS.items() if d == int(dim)), None)


def describe_feature_dims() -> str:
    """ "256 (v1), 768 (v2)": the known widths, for messages."""
    return ", ".join(f"{d} ({v})" for v, d in FEATURE_DIMS.items())
