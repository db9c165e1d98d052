"""Data order that survives a restart: a per-epoch permutation from (seed, epoch) that can skip ahead.

``fit --ckpt_path last`` from a checkpoint taken mid-epoch must see the rest of *the same* epoch, in
the same order, and nothing twice. A plain shuffled DataLoader draws a new permutation from the
global RNG when the epoch restarts. :class:`ResumableSampler` instead derives each epoch's order
from the seed and the epoch number (it is a ``DistributedSampler``, so under DDP every rank takes
its share of that order and Lightning keeps it as it is), and after a restore it skips the batches
the interrupted run already trained on. Its length stays the full epoch's, so Lightning's batch
counter (restored from the checkpoint) and the learning-rate schedule line up with an uninterrupted run.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch.distributed as dist
from torch.utils.data import Dataset, DistributedSampler


class ResumableSampler(DistributedSampler):
    """A ``DistributedSampler`` (one replica outside distributed runs) that can skip into an epoch."""

    def __init__(self, dataset: Dataset, shuffle: bool, seed: int, batch_size: int) -> None:
        distributed = dist.is_available() and dist.is_initialized()
        super().__init__(
            dataset,
            num_replicas=dist.get_world_size() if distributed else 1,
            rank=dist.get_rank() if distributed else 0,
            shuffle=shuffle,
            seed=seed,
        )
        self.batch_size = batch_size
        self.skip_batches = 0  # batches of the current epoch already consumed before a restart

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        if hasattr(self.dataset, "set_epoch"):  # datasets drawn per epoch (materialised prefix rows)
            self.dataset.set_epoch(epoch)

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        skip, self.skip_batches = self.skip_batches * self.batch_size, 0
        return iter(indices[skip:])
