"""Prompt-response pairs for supervised fine-tuning of the reference LM."""

from __future__ import annotations

import logging

from pargs.datamodules.base import JsonlDataModule
from pargs.datamodules.collate import SFTCollator
from pargs.models.encoding import encode_prompt, encode_response, truncate
from pargs.records import load_sft

log = logging.getLogger(__name__)


class SFTDataModule(JsonlDataModule):
    """Tokenized ``prompt + response + EOS`` sequences; the loss covers the response (and EOS).

    Args:
        train_file: SFT JSONL (``{"id", "prompt", "response"}``) for training.
        tokenizer: directory or hub name of the tokenizer.
        val_file: SFT JSONL for validation (optional).
        max_length: most tokens per sequence (prompt truncated from the left first).
        batch_size: sequences per batch.
        num_workers: DataLoader worker processes.
        loss_on_prompt: also train on the prompt tokens.
        drop_unusable: count and skip empty responses instead of failing on them.
        trust_remote_code: allow the tokenizer's own code to run.
        seed: seed of the shuffling (epoch e uses the permutation of (seed, e)).
        max_unknown_share: refuse a file when more than this share of its tokens are the tokenizer's unknown
            token (above 2 % it warns; :mod:`pargs.datamodules.unknown_tokens`); 1.0 never refuses.
    """

    response_keys = ("response",)

    def __init__(
        self,
        train_file: str,
        tokenizer: str,
        val_file: str | None = None,
        max_length: int | None = 512,
        batch_size: int = 32,
        num_workers: int = 0,
        loss_on_prompt: bool = False,
        drop_unusable: bool = False,
        trust_remote_code: bool = False,
        seed: int = 0,
        max_unknown_share: float = 0.5,
    ) -> None:
        super().__init__()
        self.check_max_unknown_share(max_unknown_share)
        self.save_hyperparameters()

    def load(self, path: str) -> list[dict]:
        records, report = load_sft(path, drop_unusable=self.hparams.drop_unusable, with_line=True)
        examples, truncated = [], 0
        for rec in records:
            p = encode_prompt(self.tokenizer, rec["prompt"])
            r = encode_response(self.tokenizer, rec["response"])
            p2, r2 = truncate(p, r, self.hparams.max_length, "left")
            truncated += (len(p2), len(r2)) != (len(p), len(r))
            examples.append({"id": rec["id"], "line": rec["_line"], "prompt": p2, "response": r2})
        log.info("%s; %d sequences truncated to max_length=%s", report.summary(), truncated, self.hparams.max_length)
        return examples

    def collate_fn(self):
        return SFTCollator(self.tokenizer.pad_token_id, self.hparams.loss_on_prompt)
