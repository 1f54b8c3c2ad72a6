"""Dealing each global batch across the ranks, so that p ranks train as one process would.

    loader = ShardedLoader(images, batch_size=256, shuffle=True, seed=0, rank=r, size=p)
    for xb, _ in loader:                        # xb: rank r's part of the next global batch
        start, stop, total = loader.last_shard  # xb is rows start:stop of a batch of `total`

The loader draws every epoch's order exactly as DataLoader(images, batch_size=256, seed=0)
does in one process (every rank draws the same permutation from the same seed), and rank r
takes its part of each global batch: shard_bounds(total, r, p), the first total % p ranks one
example more than the rest (numpy.array_split's rule). So the ranks' parts are disjoint and
together the whole batch, the last short batch included. Its state is DataLoader's, the same
on every rank and free of the rank count: a checkpoint taken with 4 ranks resumes with 2.
"""

from __future__ import annotations

from ..data.loader import DataLoader

__all__ = ["ShardedLoader", "shard_bounds"]


def shard_bounds(total, rank, size):
    """(start, stop): rank's part of `total` examples dealt to `size` ranks."""
    if not 0 <= rank < size:
        raise ValueError(f"shard_bounds: rank must be in [0, {size}), got {rank}")
    base, extra = divmod(int(total), int(size))
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


class ShardedLoader(DataLoader):
    """A DataLoader whose every batch is the global batch's part for `rank` of `size`;
    `last_shard` is (start, stop, total) of the batch handed out last."""

    def __init__(self, images, labels=None, batch_size=128, shuffle=True, seed=0,
                 drop_last=False, rank=0, size=1):
        super().__init__(images, labels, batch_size=batch_size, shuffle=shuffle, seed=seed,
                         drop_last=drop_last)
        if not 0 <= rank < size:
            raise ValueError(f"ShardedLoader: rank must be in [0, {size}), got {rank}")
        self.rank, self.size = int(rank), int(size)
        self.last_shard = None

    def _positions(self, k):
        lo, hi = super()._positions(k)
        start, stop = shard_bounds(hi - lo, self.rank, self.size)
        self.last_shard = (start, stop, hi - lo)
        return lo + start, lo + stop
