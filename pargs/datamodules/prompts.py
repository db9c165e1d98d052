"""Prompts for prediction: batches of records ``{"id", "prompt", "reference"}`` (text in, text out)."""

from __future__ import annotations

import lightning as L
from torch.utils.data import DataLoader

from pargs.records import load_prompts


def _as_list(batch: list[dict]) -> list[dict]:
    return batch


class PromptDataModule(L.LightningDataModule):
    """Prompt records for ``predict``; the decoding module tokenizes them itself.

    Under several devices Lightning gives each rank its share of the prompts (no prompt twice).

    Args:
        predict_file: prompt JSONL (``{"id", "prompt"}`` + optional ``"reference"``).
        batch_size: prompts per batch (each method decodes ``batch_size * samples`` rows at once).
        limit: use only the first ``limit`` prompts (None = all).
        num_workers: DataLoader worker processes.
    """

    def __init__(self, predict_file: str, batch_size: int = 16, limit: int | None = None, num_workers: int = 0) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.records: list[dict] | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.records is None:
            records = load_prompts(self.hparams.predict_file, with_line=True)
            for rec in records:  # where each prompt came from, for error messages
                rec["_file"] = self.hparams.predict_file
            self.records = records[: self.hparams.limit] if self.hparams.limit else records

    def predict_dataloader(self) -> DataLoader:
        return DataLoader(self.records, batch_size=self.hparams.batch_size, shuffle=False,
                          num_workers=self.hparams.num_workers, collate_fn=_as_list)
