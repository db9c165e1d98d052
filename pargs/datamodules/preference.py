"""Preference pairs for reward-model training, from JSONL files in the project's schema."""

from __future__ import annotations

import logging

from pargs.datamodules.base import JsonlDataModule
from pargs.datamodules.collate import PairCollator
from pargs.models.encoding import encode_pair
from pargs.records import load_preferences

log = logging.getLogger(__name__)


class PreferenceDataModule(JsonlDataModule):
    """Tokenized ``(prompt, chosen, rejected)`` pairs, batched by :class:`PairCollator`.

    Args:
        train_file: preference JSONL for training.
        val_file: preference JSONL for validation (optional).
        tokenizer: directory or hub name of the reward model's tokenizer.
        max_length: most tokens of prompt + response; longer pairs are truncated (and counted).
        truncation_side: "left" drops the oldest prompt tokens first, "right" cuts the responses.
        batch_size: pairs per batch (each pair is two sequences).
        num_workers: DataLoader worker processes.
        drop_unusable: count and skip empty / identical responses instead of failing on them.
        trust_remote_code: allow the tokenizer's own code to run.
        seed: seed of the shuffling (epoch e uses the permutation of (seed, e)).
    """

    response_keys = ("chosen", "rejected")

    def __init__(
        self,
        train_file: str,
        tokenizer: str,
        val_file: str | None = None,
        max_length: int | None = 512,
        truncation_side: str = "left",
        batch_size: int = 16,
        num_workers: int = 0,
        drop_unusable: bool = False,
        trust_remote_code: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()

    def load(self, path: str) -> list[dict]:
        records, report = load_preferences(path, drop_unusable=self.hparams.drop_unusable)
        examples, truncated = [], 0
        for rec in records:
            p, c, r, cut = encode_pair(self.tokenizer, rec["prompt"], rec["chosen"], rec["rejected"],
                                       self.hparams.max_length, self.hparams.truncation_side)
            truncated += cut
            examples.append({"id": rec["id"], "prompt": p, "chosen": c, "rejected": r})
        log.info("%s; %d pairs truncated to max_length=%s", report.summary(), truncated, self.hparams.max_length)
        return examples

    def collate_fn(self):
        return PairCollator(self.tokenizer.pad_token_id)
