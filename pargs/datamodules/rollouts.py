"""Scored rollouts of the reference LM for training a CD-FUDGE prefix value model.

The rollouts are what ``pargs predict`` writes when it samples the training prompts with the
reference LM and scores each response with a reward (``lightning_configs/baselines/value_rollouts.yaml``):
one record per (prompt, sample) with the response text and its reward.
"""

from __future__ import annotations

import logging

from pargs.datamodules.base import JsonlDataModule
from pargs.datamodules.collate import RolloutCollator
from pargs.decoding.noise import stable_seed
from pargs.errors import ConfigError
from pargs.models.encoding import encode_prompt, encode_response, truncate
from pargs.records import load_rollouts, rollout_complete

log = logging.getLogger(__name__)


class RolloutDataModule(JsonlDataModule):
    """Tokenized ``prompt + response (+ EOS when finished)`` rows with the rollout's reward.

    The ids are those the reward models and the cached decoding scorer read (``concat`` layout), so
    the value of a prefix during decoding is read exactly as in training.

    Args:
        train_file: rollout JSONL, or a ``pargs predict`` output directory of ``predictions-rank*.jsonl``.
        tokenizer: directory or hub name of the value model's (= the policy's) tokenizer.
        val_file: rollouts for validation (optional; exclusive with ``val_fraction``).
        val_fraction: hold out this share of the *prompts* of ``train_file`` (all their rollouts) for
            validation, chosen by a hash of the prompt text (0 = none).
        max_length: most tokens of prompt + response; the oldest prompt tokens are cut first (counted).
        batch_size: rollouts per batch.
        num_workers: DataLoader worker processes.
        drop_unusable: count and skip rollouts with no response token instead of failing on them.
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
        val_fraction: float = 0.0,
        max_length: int | None = 512,
        batch_size: int = 32,
        num_workers: int = 0,
        drop_unusable: bool = False,
        trust_remote_code: bool = False,
        seed: int = 0,
        max_unknown_share: float = 0.5,
    ) -> None:
        super().__init__()
        self.check_max_unknown_share(max_unknown_share)
        if not 0.0 <= val_fraction < 1.0:
            raise ConfigError(f"val_fraction must be in [0, 1), got {val_fraction}")
        if val_fraction and val_file:
            raise ConfigError("set either val_file or val_fraction, not both")
        self.save_hyperparameters()

    def load(self, path: str) -> list[dict]:
        records, report = load_rollouts(path, drop_unusable=self.hparams.drop_unusable, with_line=True)
        examples, truncated = [], 0
        for rec in records:
            p = encode_prompt(self.tokenizer, rec["prompt"])
            r = encode_response(self.tokenizer, rec["response"], add_eos=rollout_complete(rec))
            p2, r2 = truncate(p, r, self.hparams.max_length, "left")
            truncated += (len(p2), len(r2)) != (len(p), len(r))
            key = f"{rec['id']}/{rec.get('method', '')}/{rec.get('sample', 0)}"
            examples.append(
                {
                    "id": key,
                    "file": rec["_file"],
                    "line": rec["_line"],
                    "prompt_text": rec["prompt"],
                    "prompt": p2,
                    "response": r2,
                    "reward": float(rec["reward"]),
                }
            )
        log.info("%s; %d rollouts truncated to max_length=%s", report.summary(), truncated, self.hparams.max_length)
        return examples

    def setup(self, stage: str | None = None) -> None:
        super().setup(stage)
        fraction = self.hparams.val_fraction
        if fraction and "train" in self.datasets and "val" not in self.datasets:
            rows = self.datasets["train"]
            is_val = [stable_seed("val", ex["prompt_text"]) % 10_000 < fraction * 10_000 for ex in rows]
            held = [ex for ex, v in zip(rows, is_val) if v]
            self.datasets["val"] = held
            self.datasets["train"] = [ex for ex, v in zip(rows, is_val) if not v]
            log.info(
                "val_fraction=%s: %d rollouts held out for validation, %d for training",
                fraction,
                len(held),
                len(self.datasets["train"]),
            )

    def collate_fn(self):
        return RolloutCollator(self.tokenizer.pad_token_id)
