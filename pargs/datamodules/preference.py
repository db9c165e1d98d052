"""Preference pairs for reward-model training, from JSONL files in the project's schema."""

from __future__ import annotations

import logging

from pargs.datamodules.base import JsonlDataModule
from pargs.datamodules.collate import PairCollator
from pargs.datamodules.prefix_rows import PrefixRows
from pargs.errors import ConfigError
from pargs.models.encoding import encode_pair
from pargs.prefixes import check_pad_rule
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
        seed: seed of the shuffling (epoch e uses the permutation of (seed, e)) and of prefix rows.
        max_unknown_share: refuse a file when more than this share of its tokens are the tokenizer's unknown
            token (above 2 % it warns; :mod:`pargs.datamodules.unknown_tokens`); 1.0 never refuses.
        prefix_rows: train on materialised prefix pairs instead of whole pairs (needed by encoder RMs,
            which cannot read every prefix from one pass): a ratio r draws r x (number of pairs) rows
            per epoch (the paper: 1, 1.5, 2, 3), "all" takes every prefix of every pair; None: whole pairs.
        pad_rule: how prefix rows treat the shorter response (must match the reward module's).
        prefix_weighting: how a ratio of prefix rows draws pairs (must match the reward module's
            ``weighting``): ``"term"`` every (pair, prefix) term equally likely, as the dense loss and
            ``prefix_rows: all`` weigh them; ``"pair"`` every pair equally likely. Within a pair the
            prefix length is uniform.

    A record may carry a ``margin`` (e.g. a score difference); the loss then subtracts it per pair.
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
        prefix_rows: float | str | None = None,
        pad_rule: str = "longest",
        prefix_weighting: str = "term",
        max_unknown_share: float = 0.5,
    ) -> None:
        super().__init__()
        self.check_max_unknown_share(max_unknown_share)
        check_pad_rule(pad_rule)
        if prefix_weighting not in ("term", "pair"):
            raise ConfigError(f"prefix_weighting must be 'term' or 'pair', got {prefix_weighting!r}")
        self.save_hyperparameters()

    def load(self, path: str) -> list[dict]:
        records, report = load_preferences(path, drop_unusable=self.hparams.drop_unusable, with_line=True)
        examples, truncated = [], 0
        for rec in records:
            p, c, r, cut = encode_pair(
                self.tokenizer,
                rec["prompt"],
                rec["chosen"],
                rec["rejected"],
                self.hparams.max_length,
                self.hparams.truncation_side,
            )
            truncated += cut
            examples.append(
                {
                    "id": rec["id"],
                    "line": rec["_line"],
                    "prompt": p,
                    "chosen": c,
                    "rejected": r,
                    "margin": rec.get("margin"),
                }
            )
        log.info("%s; %d pairs truncated to max_length=%s", report.summary(), truncated, self.hparams.max_length)
        return examples

    def dataset(self, split: str):
        if split == "train" and self.hparams.prefix_rows is not None:
            return PrefixRows(
                self.datasets["train"],
                self.hparams.prefix_rows,
                self.hparams.seed,
                self.hparams.pad_rule,
                self.hparams.prefix_weighting,
            )
        return self.datasets[split]

    def collate_fn(self):
        return PairCollator(self.tokenizer.pad_token_id)
