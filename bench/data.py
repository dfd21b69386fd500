"""Benchmark the training data path on synthetic stores of growing size; one JSON line each.

For every `--minutes` size and path (`lazy`: windows read from the store's files by the
loader; `packed`: windows read from the packed store, rvc/data/packed.py; `memory`: every slice
held in memory), in a fresh process so peaks do not mix:
- `setup_s`: DataModule.setup (indexing the store; the memory path also reads it all; packed
  also packs it, which a later run skips);
- `batches_per_s` over one training epoch through a Lightning Trainer with a trivial module,
  so the figure is what the loader can feed: a GPU step slower than 1 / batches_per_s never
  waits on data;
- `worker_cpu_s` per batch: CPU seconds the loader workers spent (with `--workers` > 0);
- `peak_rss_mb`: peak resident memory of the process (and of its largest worker).

The stores are sparse files (bench/synthetic_store.py), so 10 h costs no disk; their audio is
silence, which reads as fast as any audio from the page cache.

    python bench/data.py                                 # 10 min, 1 h, 10 h; lazy, packed, memory
    python bench/data.py --minutes 600 --paths lazy --workers 2
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def measure(root: str, path: str, workers: int, batch_size: int) -> dict:
    """One epoch of the store at `root` through a Trainer; figures of this process."""
    import lightning as L
    import psutil
    import torch

    from rvc.data.datamodule import RVCDataModule

    class Trivial(L.LightningModule):  # the loader's cost alone: the step does nearly nothing
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))
            self.batches = 0

        def training_step(self, batch, i):
            self.batches += 1
            return (self.w * batch["pitchf"][:, :1].mean()).sum()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.0)

    t0 = time.perf_counter()
    dm = RVCDataModule(root, 40000, 400, batch_size=batch_size, num_workers=workers,
                       lazy=path != "memory", packed=path == "packed", val_slices=2)  # fmt: skip
    dm.setup("fit")
    setup_s = time.perf_counter() - t0
    module, proc = Trivial(), psutil.Process()
    trainer = L.Trainer(
        max_epochs=1, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, use_distributed_sampler=False,
        limit_val_batches=0,
    )  # fmt: skip
    worker_peak, worker_cpu = 0, 0.0

    def poll():  # workers exit with the epoch: read them while they run
        nonlocal worker_peak, worker_cpu
        for c in proc.children():
            try:
                worker_peak = max(worker_peak, c.memory_info().rss)
                t = c.cpu_times()
                worker_cpu = max(worker_cpu, t.user + t.system)
            except psutil.Error:
                pass

    class Poll(L.Callback):
        def on_train_batch_end(self, *a):
            if module.batches % 20 == 0:
                poll()

    trainer.callbacks.append(Poll())
    t1 = time.perf_counter()
    trainer.fit(module, datamodule=dm)
    epoch_s = time.perf_counter() - t1
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {
        "slices": len(dm.train_names) + len(dm.val_names),
        "hours": round(dm.n_train_frames / 360000, 2),
        "lazy": dm.lazy,
        "setup_s": round(setup_s, 2),
        "batches": module.batches,
        "batches_per_s": round(module.batches / epoch_s, 1),
        "worker_cpu_s_per_batch": round(workers and worker_cpu * workers / module.batches, 4),
        "peak_rss_mb": round(peak),
        "worker_peak_rss_mb": round(worker_peak / 2**20),
    }


def run_one(minutes: float, path: str, workers: int, batch_size: int, tmp: Path) -> dict:
    """Fabricate (once per size) and measure in a fresh process."""
    sys.path.insert(0, str(HERE))
    from synthetic_store import fabricate

    root = tmp / f"store_{minutes:g}"
    if not (root / "manifest.json").exists():
        fabricate(root, minutes)
    cmd = [sys.executable, __file__, "--child", str(root), "--paths", path,
           "--workers", str(workers), "--batch-size", str(batch_size)]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return {
        "minutes": minutes,
        "path": path,
        "workers": workers,
        **json.loads(out.splitlines()[-1]),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--minutes", type=float, nargs="+", default=[10, 60, 600])
    p.add_argument(
        "--paths",
        nargs="+",
        default=["lazy", "packed", "memory"],
        choices=["lazy", "memory", "packed"],
    )
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--memory-max-minutes", type=float, default=60,
                   help="skip the memory path above this size (10 h of it is ~8 GB)")  # fmt: skip
    p.add_argument("--child", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        print(json.dumps(measure(a.child, a.paths[0], a.workers, a.batch_size)))
        return
    from rvc.utils.device import cpu_description

    with tempfile.TemporaryDirectory() as tmp:
        for minutes in a.minutes:
            for path in a.paths:
                if path == "memory" and minutes > a.memory_max_minutes:
                    continue
                row = run_one(minutes, path, a.workers, a.batch_size, Path(tmp))
                print(json.dumps({"bench": "data", **row, "cpu": cpu_description()}), flush=True)


if __name__ == "__main__":
    main()
