"""What the training datamodules share: a train and an optional validation JSONL file."""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
from torch.utils.data import DataLoader

from pargs.datamodules.resumable import ResumableData
from pargs.models.loading import ModelSpec, check_model_source, load_tokenizer


class JsonlDataModule(ResumableData, L.LightningDataModule):
    """Loads ``train_file`` / ``val_file`` once with :meth:`load` and serves them with :meth:`collate_fn`.

    Subclasses call ``save_hyperparameters()`` with at least ``train_file``, ``val_file``,
    ``tokenizer``, ``batch_size``, ``num_workers``, ``seed`` and ``trust_remote_code``.

    The training order is a :class:`ResumableSampler`: checkpoints record how far into the epoch
    training got, so a resumed run continues the same epoch in the same order.
    """

    def __init__(self) -> None:
        super().__init__()
        self.datasets: dict[str, list[dict]] = {}
        self._tokenizer = None

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            check_model_source(self.hparams.tokenizer, "data.init_args.tokenizer")
            self._tokenizer = load_tokenizer(
                ModelSpec(path=self.hparams.tokenizer, trust_remote_code=self.hparams.trust_remote_code)
            )
        return self._tokenizer

    #: example keys holding response ids (a sequence is prompt + one of them)
    response_keys: tuple[str, ...] = ()

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

    def dataset(self, split: str):
        """What a split's loader iterates (subclasses may wrap the loaded examples)."""
        return self.datasets[split]

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        hp = self.hparams
        return self.resumable_loader(self.dataset(split), shuffle, split == "train", hp.seed, hp.batch_size,
                                     hp.num_workers, self.collate_fn())

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader | list:
        return self._loader("val", shuffle=False) if "val" in self.datasets else []

    def longest_sequence(self) -> tuple[int, str]:
        """``(tokens, where)`` of the longest training or validation sequence (prompt + response): the
        file (an example's own ``file``, else the split's), and the line, response field and id where
        the examples keep them."""
        best, where = 0, ""
        for split, path in (("train", self.hparams.train_file), ("val", self.hparams.val_file)):
            for ex in self.datasets.get(split, []):
                for key in self.response_keys:
                    n = len(ex["prompt"]) + len(ex[key])
                    if n > best:
                        line = f", line {ex['line']}" if "line" in ex else ""
                        rid = f" (id {ex['id']!r})" if "id" in ex else ""
                        # a val split cut from the training file (val_fraction) has no file of its own
                        file = ex.get("file", path or self.hparams.train_file)
                        best, where = n, f"{file}{line}: field {key!r}{rid}"
        return best, where
