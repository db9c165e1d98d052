"""Stream predictions to JSONL so an interrupted ``predict`` resumes without losing or repeating a line, and
never counts a line that this config would not have written.

Each rank appends to its own ``predictions-rank<r>.jsonl`` in ``output_dir`` and flushes + fsyncs after
every batch. On start, global rank 0, alone and before any model is loaded:

- takes the directory's lock (:mod:`pargs.lit.run_lock`): a second run on the same directory stops with a
  message naming the holder, instead of writing every line twice;
- checks that the directory and its files can be written (one message, not a traceback);
- cuts a torn last line (a process killed mid-write) off every prediction file, whichever rank wrote it, so
  a resumed run on fewer processes repairs the files no process appends to any more;
- compares what made the lines already there with what this config would make (:mod:`pargs.lit.resume_check`)
  and records this config's settings in ``manifest.json`` before the first line of a method is written.

The other ranks wait for its verdict (a broadcast), then every rank hands the keys (prompt id, method,
sample) of every complete line in the directory to the decoding module, which skips them. Restarting with
the same config therefore finishes the job, with every key exactly once, also on a different number of
processes.
"""

from __future__ import annotations

import json
import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import lightning as L
from lightning.pytorch.callbacks import BasePredictionWriter

from pargs.errors import ConfigError
from pargs.lit.manifest import read_manifest
from pargs.lit.resume_check import ON_CHANGE, check_and_record, current_prompts
from pargs.lit.run_lock import DirectoryLock, acquire
from pargs.models.identity import FileDigests

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
    """Cut an incomplete last line (no newline) off ``path``; return the bytes removed. The file is opened for
    writing only when there is something to cut."""
    if not path.exists():
        return 0
    size = path.stat().st_size
    with open(path, "rb") as fh:
        tail_start = max(0, size - (1 << 16))
        while True:  # the last newline, read backwards in blocks
            fh.seek(tail_start)
            block = fh.read(size - tail_start)
            at = block.rfind(b"\n")
            if at >= 0 or tail_start == 0:
                keep = tail_start + at + 1
                break
            tail_start = max(0, tail_start - (1 << 16))
    if keep == size:
        return 0
    with open(path, "rb+") as fh:
        fh.truncate(keep)
        fh.flush()
        os.fsync(fh.fileno())
    return size - keep


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


#: how a message says where else to write
ELSEWHERE = "write to another directory (pargs predict --predictions DIR)"


@contextmanager
def _writable(output_dir: Path):
    """Turn an ``OSError`` of writing into the predictions directory into one :class:`ConfigError` line."""
    try:
        yield
    except OSError as err:
        where = f" ({err.filename})" if err.filename else ""
        raise ConfigError(
            f"cannot write to predictions directory {output_dir}: {err.strerror or err}{where}; "
            f"make it writable, or {ELSEWHERE}"
        ) from None


def rank_zero_value(trainer, value):
    """Rank 0's ``value`` on every rank (unchanged on one process)."""
    strategy = getattr(trainer, "strategy", None)
    if strategy is None or trainer.world_size == 1:
        return value
    return strategy.broadcast(value, src=0)


class JsonlPredictionWriter(BasePredictionWriter):
    """Append each batch's prediction records to ``output_dir/predictions-rank<r>.jsonl``.

    Args:
        output_dir: directory of the prediction files (created if missing); ``pargs predict --predictions DIR``
            sets it from the command line.
        on_change: lines already there that this config would not write (other method settings or models,
            another prompt, no record): refuse (stop, naming what changed), restart (remove those lines and
            decode them again), adopt (record this config's settings for lines without a record, refuse the
            rest); ``pargs predict --on_change`` sets it. See :mod:`pargs.lit.resume_check`.
    """

    def __init__(self, output_dir: str, on_change: Literal["refuse", "restart", "adopt"] = "refuse") -> None:
        super().__init__(write_interval="batch")
        if on_change not in ON_CHANGE:
            raise ConfigError(
                f"JsonlPredictionWriter: on_change must be one of {', '.join(ON_CHANGE)}, got {on_change!r}"
            )
        self.output_dir = Path(output_dir)
        self.on_change = on_change
        self.done: set[Key] = set()
        self._fh = None
        self._lock: DirectoryLock | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "predict":
            return
        rank = trainer.global_rank
        failure = None
        if rank == 0:
            try:
                self._prepare(trainer, pl_module)
            except ConfigError as err:
                failure = str(err)
            except BaseException:
                failed = "global rank 0 failed while preparing the predictions directory (its error says why)"
                rank_zero_value(trainer, failed)
                raise
        failure = rank_zero_value(trainer, failure)
        if failure is not None:
            self._release()
            raise ConfigError(failure)
        self.done = completed_keys(self.output_dir)
        if self.done and rank == 0:
            log.info("resuming: %d predictions already in %s are skipped", len(self.done), self.output_dir)
        with _writable(self.output_dir):
            self._fh = open(self.output_dir / f"predictions-rank{rank}.jsonl", "a", encoding="utf-8")

    def _prepare(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Rank 0's part of :meth:`setup` (module docstring): lock, check, repair, compare and record."""
        with _writable(self.output_dir):
            self.output_dir.mkdir(parents=True, exist_ok=True)
            self._lock = acquire(self.output_dir, ELSEWHERE)
            files = prediction_files(self.output_dir)
            for path in files:
                open(path, "ab").close()  # each file can be appended to, before anything is changed
            for path in files:
                removed = repair_tail(path)
                if removed:
                    log.warning("%s: removed a torn last line (%d bytes) left by an interrupted run", path, removed)
        manifest = read_manifest(self.output_dir)
        digests = FileDigests((manifest or {}).get("file_digests"))
        settings_of = getattr(pl_module, "prediction_settings", None)
        settings = settings_of(digests) if callable(settings_of) else None
        prompts, prompt_file = current_prompts(getattr(trainer, "datamodule", None))
        with _writable(self.output_dir):
            check_and_record(self.output_dir, files, settings, prompts, prompt_file, self.on_change, digests, manifest)

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx=0):
        if not prediction:
            return
        self._fh.write("".join(json.dumps(rec, ensure_ascii=False) + "\n" for rec in prediction))
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.done.update((str(r["id"]), r["method"], int(r["sample"])) for r in prediction)

    def _release(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._release()  # Lightning calls no teardown after an exception: the lock must not outlive the run

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._release()
