"""What the training datamodules share: a train and an optional validation JSONL file."""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
from torch.utils.data import DataLoader

from pargs.models.loading import ModelSpec, load_tokenizer


class JsonlDataModule(L.LightningDataModule):
    """Loads ``train_file`` / ``val_file`` once with :meth:`load` and serves them with :meth:`collate_fn`.

    Subclasses call ``save_hyperparameters()`` with at least ``train_file``, ``val_file``,
    ``tokenizer``, ``batch_size``, ``num_workers`` and ``trust_remote_code``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.datasets: dict[str, list[dict]] = {}
        self._tokenizer = None

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(
                ModelSpec(path=self.hparams.tokenizer, trust_remote_code=self.hparams.trust_remote_code)
            )
        return self._tokenizer

    def load(self, path: str) -> list[dict]:
        """Read and tokenize one file."""
        raise NotImplementedError

    def collate_fn(self) -> Callable[[list[dict]], dict]:
        """The batch collator."""
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit") and "train" not in self.datasets:
            self.datasets["train"] = self.load(self.hparams.train_file)
        if stage in (None, "fit", "validate") and self.hparams.val_file and "val" not in self.datasets:
            self.datasets["val"] = self.load(self.hparams.val_file)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        return DataLoader(self.datasets[split], batch_size=self.hparams.batch_size, shuffle=shuffle,
                          num_workers=self.hparams.num_workers, collate_fn=self.collate_fn())

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader | list:
        return self._loader("val", shuffle=False) if "val" in self.datasets else []
