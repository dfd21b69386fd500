"""Which HuBERT layer a v1 voice model's content features come from (docs/v1_features.md).

v1 models take 256-dim features, `final_proj(output of HuBERT layer N)`, and the tools disagree
on N (read from their code, not their docs):
- RVC WebUI, and Applio up to 3.2.4: N = 9 (fairseq `output_layer=9`, later
  `hidden_states[9]`), in feature extraction and in inference.
- Applio 3.2.5 to 3.2.8 (2024-09 to 2024-12): extraction took `final_proj(last_hidden_state)`,
  N = 12, so the v1 models they trained expect layer 12. Applio's inference has used 12 for
  every v1 model since 3.2.5 (still today); 3.2.9 (2025-01) stopped training v1.
A file says which where its writer left a trace. Ours record `v1_layer`. Applio 3.2.5-3.2.8's
exporter (`rvc/train/process/extract_model.py`) wrote `overtrain_info` (None or a loss summary)
and the misspelt `dataset_lenght` into every model, v1 or v2; nothing before it did (3.2.4: epoch,
step, creation_date, model_hash; the WebUI: info only), and the writers after it that keep
`overtrain_info` (Applio >= 3.2.9, ultimate-rvc) write v2 models only. So in a v1 file either key
means layer 12. Files without any of them get RVC's 9.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DEFAULT_LAYER = 9  # RVC WebUI's; for files that do not say, and for extraction's "auto"
APPLIO_LAYER = 12  # Applio 3.2.5-3.2.8: final_proj(last_hidden_state)
RECORD_KEY = "v1_layer"  # what our files record
APPLIO_MARKERS = ("overtrain_info", "dataset_lenght")  # written only by Applio >= 3.2.5's exporter


def parse_v1_layer(value: Any, where: str = "embedder.v1_layer") -> int | None:
    """`auto`/None → None (decide later); 9, "12" → that layer; anything else: ValueError."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("auto", "")):
        return None
    try:
        if isinstance(value, bool) or float(value) != int(float(value)):
            raise ValueError
        layer = int(float(value))
    except (TypeError, ValueError):
        layer = 0
    if layer < 1:
        raise ValueError(
            f"{where}: {value!r} is not a layer; use auto, 9 (RVC WebUI) or 12 (Applio 3.2.5+)"
        )
    return layer


def features_v1_layer(value: Any, where: str = "embedder.v1_layer") -> int:
    """The layer extraction reads: the one given, or RVC's 9 for `auto` (no file to ask)."""
    layer = parse_v1_layer(value, where)
    return DEFAULT_LAYER if layer is None else layer


def file_v1_layer(metadata: Mapping[str, Any], where: str = "voice model") -> tuple[int, str]:
    """(layer, why) a v1 file's metadata points to; `where` (the file) names errors."""
    if metadata.get(RECORD_KEY) is not None:
        from rvc.io.safe_load import ModelFileError

        try:
            layer = parse_v1_layer(metadata[RECORD_KEY], f"{where}: '{RECORD_KEY}'")
        except ValueError as e:
            raise ModelFileError(str(e)) from e
        if layer is not None:
            return layer, f"the file records {RECORD_KEY}={layer}"
    marker = next((k for k in APPLIO_MARKERS if k in metadata), None)
    if marker is not None:
        return APPLIO_LAYER, (
            f"an Applio 3.2.5-3.2.8 file (it has '{marker}'); Applio trained v1 on layer "
            f"{APPLIO_LAYER}"
        )
    return DEFAULT_LAYER, "RVC's layer; the file does not say (WebUI, Applio <= 3.2.4, ...)"


def choose_v1_layer(
    metadata: Mapping[str, Any], requested: Any = "auto", where: str = "voice model"
) -> tuple[int, str]:
    """(layer, why) to convert a v1 model with: `requested` (9, 12, ...) or, for `auto`, the
    file's (`file_v1_layer`)."""
    layer = parse_v1_layer(requested)
    if layer is None:
        return file_v1_layer(metadata, where)
    found, _ = file_v1_layer(metadata, where)
    note = "" if found == layer else f"; the file points to {found}"
    return layer, f"embedder.v1_layer={layer}{note}"


def features_stage_config(embedder: dict[str, Any]) -> dict[str, Any]:
    """The embedder config a store records for its features: for v1 the layer read, left out
    at 9 (as in stores made before the option); for v2 none (v2 reads the last layer)."""
    out = {k: v for k, v in embedder.items() if k != RECORD_KEY}
    if RECORD_KEY in embedder and embedder.get("version") == "v1":
        layer = features_v1_layer(embedder[RECORD_KEY])
        if layer != DEFAULT_LAYER:
            out[RECORD_KEY] = layer
    return out


def store_v1_layer(features_config: Mapping[str, Any]) -> int:
    """The layer a store's v1 features were read from (absent: 9)."""
    return features_v1_layer(features_config.get(RECORD_KEY), f"store: {RECORD_KEY}")
