"""Bytes DDP all-reduces in each backward of a GAN step like RVC's, and print one JSON line.

One DistributedDataParallel over G and D (as Lightning wraps the LightningModule) with
`find_unused_parameters=True`, two CPU processes on gloo; each step has the D backward (on the
detached fake) and the G backward (D frozen), each prepared as Lightning's manual
`prepare_for_backward` does. A communication hook adds up each bucket it reduces. The toy
G and D are small Linear stacks: what matters is how the bytes compare to the parameters.

    python bench/ddp_traffic.py
"""

from __future__ import annotations

import json
import os

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

WORLD = 2


def _worker(rank: int, port: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    torch.manual_seed(0)
    gen = nn.Sequential(nn.Linear(64, 256), nn.Linear(256, 64))
    disc = nn.Sequential(nn.Linear(64, 512), nn.Linear(512, 1))
    ddp = nn.parallel.DistributedDataParallel(
        nn.ModuleDict({"g": gen, "d": disc}), find_unused_parameters=True, bucket_cap_mb=0.1
    )
    sent: list[int] = []

    def count(_, bucket):  # the default all-reduce (mean), counting its bytes
        buf = bucket.buffer()
        sent.append(buf.numel() * buf.element_size())
        return (
            dist.all_reduce(buf.div_(WORLD), async_op=True)
            .get_future()
            .then(lambda f: f.value()[0])
        )

    ddp.register_comm_hook(None, count)

    def backward(loss: torch.Tensor) -> int:
        sent.clear()
        ddp.reducer._rebuild_buckets()  # what lightning.pytorch.overrides.distributed does
        ddp.reducer.prepare_for_backward([loss])
        loss.backward()
        return sum(sent)

    per_backward = []
    x = torch.randn(8, 64)
    for _ in range(3):
        fake = gen(x)
        per_backward.append(("d", backward(disc(fake.detach()).mean())))
        disc.requires_grad_(False)
        per_backward.append(("g", backward(disc(fake).mean())))
        disc.requires_grad_(True)
    if rank == 0:
        nbytes = {
            n: sum(p.numel() * 4 for p in m.parameters()) for n, m in (("g", gen), ("d", disc))
        }
        print(json.dumps({"bench": "ddp_traffic", "param_bytes": nbytes,
                          "allreduced_bytes_per_backward": per_backward}))  # fmt: skip
    dist.destroy_process_group()


def main() -> None:
    mp.spawn(_worker, args=(29533,), nprocs=WORLD)


if __name__ == "__main__":
    main()
