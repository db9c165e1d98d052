"""What the training datamodules share: a train and an optional validation JSONL file."""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
from torch.utils.data import DataLoader

from pargs.datamodules.resumable import ResumableData
from pargs.datamodules.unknown_tokens import check_unknown_tokens
from pargs.errors import ConfigError
from pargs.models.loading import ModelSpec, check_model_source, load_tokenizer


class JsonlDataModule(ResumableData, L.LightningDataModule):
    """Loads ``train_file`` / ``val_file`` once with :meth:`load` and serves them with :meth:`collate_fn`.

    Subclasses call ``save_hyperparameters()`` with at least ``train_file``, ``val_file``,
    ``tokenizer``, ``batch_size``, ``num_workers``, ``seed``, ``trust_remote_code`` and ``max_unknown_share``.

    Each file is checked once, as it is loaded, for text the tokenizer cannot read
    (:mod:`pargs.datamodules.unknown_tokens`).

    The training order is a :class:`ResumableSampler`: checkpoints record how far into the epoch
    training got, so a resumed run continues the same epoch in the same order.
    """

    def __init__(self) -> None:
        super().__init__()
        self.datasets: dict[str, list[dict]] = {}
        self._tokenizer = None

    @staticmethod
    def check_max_unknown_share(value: float) -> None:
        """Fail on a ``max_unknown_share`` outside [0, 1]."""
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"max_unknown_share must be a share in [0, 1] (1: never refuse), got {value}")

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
            self.datasets["train"] = self._load_checked(self.hparams.train_file)
        if stage in (None, "fit", "validate") and self.hparams.val_file and "val" not in self.datasets:
            self.datasets["val"] = self._load_checked(self.hparams.val_file)

    def _load_checked(self, path: str) -> list[dict]:
        """:meth:`load`, then warn (or fail) when much of the file became the tokenizer's unknown token."""
        examples = self.load(path)
        check_unknown_tokens(
            self.tokenizer,
            str(path),
            examples,
            ("prompt", *self.response_keys),
            self.hparams.get("max_unknown_share", 0.5),
        )
        return examples

    def dataset(self, split: str):
        """What a split's loader iterates (subclasses may wrap the loaded examples)."""
        return self.datasets[split]

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        hp = self.hparams
        return self.resumable_loader(
            self.dataset(split), shuffle, split == "train", hp.seed, hp.batch_size, hp.num_workers, self.collate_fn()
        )

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
