"""Length-bucketed batches: reshuffled every epoch, reproducible, sharded across DDP ranks."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np


class BucketBatchSampler:
    """Batches of slices of similar length, in an order fixed by (seed, epoch).

    Each epoch: shuffle all indices, cut them into pools of `pool_factor * batch_size`, sort
    each pool by length (less padding per batch, yet pools keep batches varied), cut batches,
    then shuffle the batches. With `num_replicas` ranks, rank `r` takes batches r, r+R, …; every
    rank gets the same number of batches (padded with repeats, or trimmed with `drop_last`),
    so DDP never waits on a rank that ran out. Use with `Trainer(use_distributed_sampler=False)`.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        *,
        seed: int = 0,
        shuffle: bool = True,
        num_replicas: int = 1,
        rank: int = 0,
        drop_last: bool = False,
        pool_factor: int = 50,
    ):
        if batch_size < 1 or num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(
                f"bad sampler options: batch_size={batch_size}, "
                f"num_replicas={num_replicas}, rank={rank}"
            )
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.num_replicas = num_replicas
        self.rank = rank
        self.drop_last = drop_last
        self.pool = max(1, pool_factor) * batch_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Order of the next iteration (call before each epoch)."""
        self.epoch = int(epoch)

    def _all_batches(self) -> list[list[int]]:
        """Every rank's batches for this epoch, the same list on every rank."""
        n = len(self.lengths)
        rng = np.random.default_rng((self.seed, self.epoch))
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        pools = [order[i : i + self.pool] for i in range(0, n, self.pool)]
        # stable sort: ties keep the shuffled order, so the result depends only on (seed, epoch)
        order = np.concatenate([p[np.argsort(self.lengths[p], kind="stable")] for p in pools])
        batches = [order[i : i + self.batch_size].tolist() for i in range(0, n, self.batch_size)]
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        if self.shuffle:
            batches = [batches[j] for j in rng.permutation(len(batches))]
        return batches

    def _per_rank(self, total: int) -> int:
        if self.drop_last:
            return total // self.num_replicas
        return -(-total // self.num_replicas)

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._all_batches()
        if not batches:
            return iter(())
        need = self._per_rank(len(batches)) * self.num_replicas
        # pad by cycling from the start (like DistributedSampler), or trim the tail
        batches = [batches[i % len(batches)] for i in range(need)]
        return iter(batches[self.rank :: self.num_replicas])

    def __len__(self) -> int:
        n = len(self.lengths)
        total = n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        return self._per_rank(total)
