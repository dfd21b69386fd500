"""Objective metrics at validation time, logged to every logger a run has.

On the held-out slices the module kept for media (real audio and the generator's inference-path
output at the model's rate): speaker similarity to the real slice, F0 RMSE (cents) and
voiced/unvoiced error with one tracker for both, and mel-cepstral distortion, logged as
`val/spk_sim`, `val/f0_rmse_cents`, `val/vuv_error`, `val/mcd`. With `score_weights`, also
`val/score` = Σ weight · metric (lower is better; e.g. `{val/mel: 1, val/spk_sim: -2}`), which
the checkpoint, plateau and export callbacks can monitor instead of `val/mel`.

With `per_speaker` and two or more speakers in the validation (a base model), also per speaker id (`batch["sid"]`):
`val/spk/<id>/mel` over every validation slice (summed on the device per `emb_g` row, one
all-reduce and one host read per validation), and the four metrics above over the kept slices
of that speaker, `val/spk/<id>/spk_sim` ... (rank 0's slices).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from rvc.eval import metrics
from rvc.formats import ANALYSIS_RATE

KEYS = ("val/spk_sim", "val/f0_rmse_cents", "val/vuv_error", "val/mcd")


class EvaluationMetrics(Callback):
    def __init__(
        self,
        every_n_epochs: int = 1,
        n_slices: int = 2,
        score_weights: Mapping[str, float] | None = None,
        f0: Any = None,
        per_speaker: bool = True,
    ) -> None:
        self.every_n_epochs = max(1, int(every_n_epochs))
        self.per_speaker = bool(per_speaker)
        self._spk: torch.Tensor | None = None  # [2, speakers]: mel error sums, bins counted
        self.n_slices = max(1, int(n_slices))
        self.score_weights = dict(score_weights or {})
        self.f0 = f0
        self.latest: dict[str, float] = {}

    def setup(self, trainer: L.Trainer, module: L.LightningModule, stage: str) -> None:
        # the module keeps this many held-out examples per validation (for media and for us)
        module.val_audio_samples = max(int(getattr(module, "val_audio_samples", 0)), self.n_slices)
        if self.f0 is None:
            from rvc.f0.dsp import PMEstimator

            self.f0 = PMEstimator()

    def _due(self, trainer: L.Trainer) -> bool:
        # with a score to monitor, every validation must log it
        return bool(self.score_weights) or (trainer.current_epoch + 1) % self.every_n_epochs == 0

    # ---- per speaker: the mel error of every validation slice ---------------------------------
    def on_validation_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self.per_speaker:  # every rank, even one without batches: the reduce needs them all
            rows = module.generator.emb_g.num_embeddings
            self._spk = torch.zeros(2, rows, dtype=torch.float64, device=module.device)

    def on_validation_batch_end(
        self, trainer: L.Trainer, module: L.LightningModule, outputs: Any, batch: Any, *args: Any
    ) -> None:
        if self._spk is None or not isinstance(outputs, Mapping) or "mel_sum" not in outputs:
            return
        sid = outputs["sid"].long()
        self._spk[0].index_add_(0, sid, outputs["mel_sum"].double())
        self._spk[1].index_add_(0, sid, outputs["mel_count"].double())

    def _log_speakers(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        sums = trainer.strategy.reduce(self._spk, reduce_op="sum").cpu()  # one all-reduce
        self._spk = None
        seen = torch.nonzero(sums[1]).flatten().tolist()
        for i in seen if len(seen) > 1 else []:  # one speaker: val/mel says it all
            module.log(f"val/spk/{i}/mel", float(sums[0, i] / sums[1, i]), rank_zero_only=True)

    # ---- the objective metrics on the kept slices --------------------------------------------
    def measure(self, examples: list[dict[str, np.ndarray]], sr: int) -> dict[str, float]:
        """Mean metrics over the examples' real and generated audio (and per speaker, with
        `per_speaker`)."""
        rows = self._rows(examples, sr)
        out = _means(rows, "val/")
        ids = sorted({r["sid"] for r in rows})
        if self.per_speaker and len(ids) > 1:
            for sid in ids:
                mine = [r for r in rows if r["sid"] == sid]
                out.update(_means(mine, f"val/spk/{sid}/"))
        return out

    def _rows(self, examples: list[dict[str, np.ndarray]], sr: int) -> list[dict[str, float]]:
        from rvc.audio.process import resample

        rows = []
        for ex in examples[: self.n_slices]:
            real, fake = ex["real"], ex["fake"]
            f0_real = self.f0.compute(resample(real, sr, ANALYSIS_RATE).astype(np.float32))
            f0_fake = self.f0.compute(resample(fake, sr, ANALYSIS_RATE).astype(np.float32))
            rmse, vuv = metrics.f0_errors(f0_real, f0_fake)
            rows.append({
                "val/spk_sim": metrics.speaker_similarity(fake, real, sr),
                "val/f0_rmse_cents": rmse, "val/vuv_error": vuv,
                "val/mcd": metrics.mel_cepstral_distortion(real, fake, sr),
                "sid": int(ex.get("sid", 0)),
            })  # fmt: skip
        return rows

    def on_validation_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self._spk is not None and not trainer.sanity_checking:
            self._log_speakers(trainer, module)
        examples = getattr(module, "_val_examples", [])
        if trainer.sanity_checking or not examples or not self._due(trainer):
            return
        if trainer.is_global_zero:
            self.latest = self.measure(examples, module.generator.sample_rate)
        for k in KEYS:  # every rank logs (the value of rank 0) so no rank waits on another
            v = self.latest.get(k, math.nan)
            if math.isfinite(v):
                module.log(k, v, rank_zero_only=True)
        for k, v in self.latest.items():  # per speaker: rank 0's slices; no callback monitors them
            if k.startswith("val/spk/") and math.isfinite(v) and trainer.is_global_zero:
                module.log(k, v, rank_zero_only=True)
        if self.score_weights and (
            trainer.is_global_zero or set(self.score_weights) <= set(trainer.callback_metrics)
        ):
            # logged here, through the module, so Lightning logs it at the epoch's step and every
            # callback's on_validation_end (checkpoint, plateau, export) sees it, whatever order
            # the callbacks come in
            module.log("val/score", self.score(trainer.callback_metrics), rank_zero_only=True)

    def score(self, logged: Mapping[str, Any]) -> float:
        """Σ weight · metric over this validation's logged metrics (each weighted key must be)."""
        missing = sorted(k for k in self.score_weights if k not in logged)
        if missing:
            raise KeyError(
                f"callbacks.evaluation.score_weights names {missing}, not logged; "
                f"known: {sorted(logged)}"
            )
        return float(sum(w * float(logged[k]) for k, w in sorted(self.score_weights.items())))


def _means(rows: list[dict[str, float]], prefix: str) -> dict[str, float]:
    """Each metric's mean over the rows (NaNs skipped), keyed `<prefix><name>`."""
    out = {}
    for k in KEYS:
        vals = [r[k] for r in rows if math.isfinite(r[k])]
        out[prefix + k.removeprefix("val/")] = float(np.mean(vals)) if vals else math.nan
    return out
