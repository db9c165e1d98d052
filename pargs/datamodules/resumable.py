"""Data order that survives a restart: a per-epoch permutation from (seed, epoch) that can skip ahead.

``fit --ckpt_path last`` from a checkpoint taken mid-epoch must see the rest of *the same* epoch, in
the same order, and nothing twice. A plain shuffled DataLoader draws a new permutation from the
global RNG when the epoch restarts. :class:`ResumableSampler` instead derives each epoch's order
from the seed and the epoch number (it is a ``DistributedSampler``, so under DDP every rank takes
its share of that order and Lightning keeps it as it is), and after a restore it skips the batches
the interrupted run already trained on. Its length stays the full epoch's, so Lightning's batch
counter (restored from the checkpoint) and the learning-rate schedule line up with an uninterrupted run.

The skip belongs to the epoch the checkpoint was taken in. A checkpoint taken on an epoch's last
batch, or at its end, records the whole epoch as done; Lightning then resumes at the next epoch,
whose fresh order must not lose those batches (tests/test_resume.py covers both boundaries).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator

import torch
import torch.distributed as dist
from lightning.pytorch.trainer.states import TrainerFn
from torch.utils.data import DataLoader, Dataset, DistributedSampler


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
        self.skip_batches = 0  # batches of epoch ``skip_epoch`` already consumed before a restart
        self.skip_epoch = 0

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        if hasattr(self.dataset, "set_epoch"):  # datasets drawn per epoch (materialised prefix rows)
            self.dataset.set_epoch(epoch)

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        skip, self.skip_batches = self.skip_batches * self.batch_size if self.epoch == self.skip_epoch else 0, 0
        return iter(indices[skip:])


class ResumableData:
    """Mixin for a ``LightningDataModule``: training loaders in a :class:`ResumableSampler` order, and
    ``state_dict`` / ``load_state_dict`` that carry how far into the epoch training got, so a run
    resumed from a mid-epoch checkpoint continues the same epoch in the same order."""

    _resume_batches = 0
    _resume_epoch = 0

    def resumable_loader(
        self,
        data: Dataset,
        shuffle: bool,
        train: bool,
        seed: int,
        batch_size: int,
        num_workers: int,
        collate_fn: Callable,
    ) -> DataLoader:
        sampler = ResumableSampler(data, shuffle, seed, batch_size)
        if train:
            sampler.skip_batches, sampler.skip_epoch, self._resume_batches = self._resume_batches, self._resume_epoch, 0
        # its own generator, so making an iterator draws nothing from the global RNG (resume exactness)
        generator = torch.Generator().manual_seed(seed)
        return DataLoader(
            data,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=num_workers,
            collate_fn=collate_fn,
            generator=generator,
        )

    def state_dict(self) -> dict:
        """How far into the current epoch training got (saved in every checkpoint of ``fit``, also the
        ones taken while validating mid-epoch)."""
        trainer = self.trainer
        if trainer is None or trainer.state.fn != TrainerFn.FITTING:
            return {}
        epochs = trainer.fit_loop.epoch_progress.current
        # once Lightning has counted an epoch as completed, current_epoch is the next one, which has not started
        # (its batch counter still holds the finished epoch's count until that epoch begins)
        started = epochs.started > epochs.completed
        done = trainer.fit_loop.epoch_loop.batch_progress.current.processed if started else 0
        return {"epoch": trainer.current_epoch, "batches_done": done}

    def load_state_dict(self, state: dict) -> None:
        """Resume mid-epoch: the next training loader skips the batches already trained on."""
        if state:
            self._resume_batches = int(state.get("batches_done", 0))
            self._resume_epoch = int(state.get("epoch", 0))
            # Lightning cannot see that this datamodule resumes mid-epoch and would warn that it does not
            warnings.filterwarnings("ignore", message="You're resuming from a checkpoint that ended before the epoch")
