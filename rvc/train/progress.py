"""The training progress bar: Lightning's rich bar, showing only what the module logs."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import RichProgressBar


class ProgressBar(RichProgressBar):
    """RichProgressBar without `v_num` (the logger's version: a run writes beside its store,
    so it is always 0, and the bar printed it as "v_num: 0.000")."""

    def get_metrics(self, trainer: Any, pl_module: Any) -> dict[str, Any]:
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        return items
