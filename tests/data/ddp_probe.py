"""Two-process DDP (gloo, CPU) over the lazy data path: each rank writes the slices it saw.

    python tests/data/ddp_probe.py <store> <out_dir>

Run by tests/data/test_lazy_scale.py; Lightning's DDP launcher starts rank 1 by re-running
this script, so it must stay a plain script.
"""

import json
import sys
from pathlib import Path

import lightning as L
import torch

from rvc.data.datamodule import RVCDataModule


class Seen(L.LightningModule):
    """Records each train batch's slices by their F0 (bench/synthetic_store.py: 100 + i Hz)."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.seen: list[int] = []

    def training_step(self, batch, i):
        self.seen += (batch["pitchf"][:, 0] - 100).round().long().tolist()
        return (self.w**2).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


if __name__ == "__main__":
    store, out = sys.argv[1], Path(sys.argv[2])
    dm = RVCDataModule(store, 40000, 400, batch_size=4, val_slices=2, mute_slices=0, lazy=True)
    module = Seen()
    trainer = L.Trainer(
        max_epochs=1, accelerator="cpu", devices=2, strategy="ddp", logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        use_distributed_sampler=False, limit_val_batches=0,
    )  # fmt: skip
    trainer.fit(module, datamodule=dm)
    out.mkdir(parents=True, exist_ok=True)
    record = {"rank": trainer.global_rank, "lazy": dm.lazy, "train": dm.train_names,
              "seen": [f"s{i:06d}" for i in module.seen]}  # fmt: skip
    (out / f"rank{trainer.global_rank}.json").write_text(json.dumps(record))
