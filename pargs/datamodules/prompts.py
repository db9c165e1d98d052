"""Prompts: batches of records ``{"id", "prompt", "reference"}`` (text in, text out) for prediction,
and for training methods that generate their own data from prompts (PPO)."""

from __future__ import annotations

import lightning as L
from torch.utils.data import DataLoader

from pargs.datamodules.resumable import ResumableData
from pargs.errors import ConfigError
from pargs.records import load_prompts


def _as_list(batch: list[dict]) -> list[dict]:
    return batch


class PromptDataModule(ResumableData, L.LightningDataModule):
    """Prompt records for ``predict`` (and ``fit`` of PPO); the modules tokenize them themselves.

    Under several devices Lightning gives each rank its share of the prompts (no prompt twice).

    Args:
        predict_file: prompt JSONL (``{"id", "prompt"}`` + optional ``"reference"``) to decode.
        batch_size: prompts per batch (each method decodes ``batch_size * samples`` rows at once).
        limit: use only the first ``limit`` prompts of each file (None = all).
        num_workers: DataLoader worker processes.
        train_file: prompt JSONL to train on (PPO's rollout prompts), served in a per-epoch permutation
            of (seed, epoch) that a resumed run continues where it stopped.
        seed: seed of that permutation.
    """

    def __init__(
        self,
        predict_file: str | None = None,
        batch_size: int = 16,
        limit: int | None = None,
        num_workers: int = 0,
        train_file: str | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.records: list[dict] | None = None
        self.train_records: list[dict] | None = None

    def _load(self, field: str, stage: str) -> list[dict]:
        path = self.hparams[field]
        if path is None:
            raise ConfigError(f"PromptDataModule needs `{field}` for {stage}")
        records = load_prompts(path, with_line=True)
        for rec in records:  # where each prompt came from, for error messages
            rec["_file"] = path
        return records[: self.hparams.limit] if self.hparams.limit else records

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "predict") and self.records is None:
            self.records = self._load("predict_file", "predict")
        if stage in (None, "fit") and self.train_records is None:
            self.train_records = self._load("train_file", "fit")

    def _loader(self, records: list[dict], shuffle: bool) -> DataLoader:
        return DataLoader(
            records,
            batch_size=self.hparams.batch_size,
            shuffle=shuffle,
            num_workers=self.hparams.num_workers,
            collate_fn=_as_list,
        )

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.records, shuffle=False)

    def train_dataloader(self) -> DataLoader:
        hp = self.hparams
        return self.resumable_loader(self.train_records, True, True, hp.seed, hp.batch_size, hp.num_workers, _as_list)
