"""Stream predictions to JSONL so an interrupted ``predict`` resumes without losing or repeating a line.

Each rank appends to its own ``predictions-rank<r>.jsonl`` in ``output_dir`` and flushes + fsyncs after
every batch. On start, a torn last line (a process killed mid-write) is cut off, and the keys
(prompt id, method, sample) of every complete line in the directory are handed to the decoding module,
which skips them. Restarting with the same config therefore finishes the job, with every key exactly once,
also on a different number of processes: rank r repairs the files of every earlier rank k with
k % world_size == r, so a file no process appends to any more is repaired too.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import BasePredictionWriter

log = logging.getLogger(__name__)

Key = tuple[str, str, int]


def prediction_files(output_dir: str | os.PathLike) -> list[Path]:
    """The prediction files of a run directory, in a stable order."""
    return sorted(Path(output_dir).glob("predictions-rank*.jsonl"))


def file_rank(path: Path) -> int | None:
    """The rank in ``predictions-rank<r>.jsonl`` (None for another name)."""
    suffix = path.stem.removeprefix("predictions-rank")
    return int(suffix) if suffix.isdigit() else None


def repair_tail(path: Path) -> int:
    """Cut an incomplete last line (no newline) off ``path``; return the bytes removed."""
    if not path.exists():
        return 0
    with open(path, "rb+") as fh:
        data = fh.read()
        keep = data.rfind(b"\n") + 1
        if keep == len(data):
            return 0
        fh.truncate(keep)
        fh.flush()
        os.fsync(fh.fileno())
    return len(data) - keep


def completed_keys(output_dir: str | os.PathLike) -> set[Key]:
    """Keys of every complete line already written in ``output_dir`` (torn tails ignored)."""
    done: set[Key] = set()
    for path in prediction_files(output_dir):
        with open(path, "rb") as fh:
            for raw in fh:
                if not raw.endswith(b"\n"):
                    break
                rec = json.loads(raw)
                done.add((str(rec["id"]), rec["method"], int(rec["sample"])))
    return done


class JsonlPredictionWriter(BasePredictionWriter):
    """Append each batch's prediction records to ``output_dir/predictions-rank<r>.jsonl``.

    Args:
        output_dir: directory of the prediction files (created if missing).
    """

    def __init__(self, output_dir: str) -> None:
        super().__init__(write_interval="batch")
        self.output_dir = Path(output_dir)
        self.done: set[Key] = set()
        self._fh = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "predict":
            return
        self.output_dir.mkdir(parents=True, exist_ok=True)
        rank, world = trainer.global_rank, trainer.world_size
        path = self.output_dir / f"predictions-rank{rank}.jsonl"
        for other in {path, *prediction_files(self.output_dir)}:
            k = file_rank(other)
            if k is not None and k % world == rank:  # each file repaired by exactly one of this run's ranks
                removed = repair_tail(other)
                if removed:
                    log.warning("%s: removed a torn last line (%d bytes) left by an interrupted run", other,
                                removed)
        self.done = completed_keys(self.output_dir)
        if self.done:
            log.info("resuming: %d predictions already in %s are skipped", len(self.done), self.output_dir)
        self._fh = open(path, "a", encoding="utf-8")

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx=0):
        if not prediction:
            return
        self._fh.write("".join(json.dumps(rec, ensure_ascii=False) + "\n" for rec in prediction))
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.done.update((str(r["id"]), r["method"], int(r["sample"])) for r in prediction)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
