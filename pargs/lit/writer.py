"""Stream predictions to JSONL so an interrupted ``predict`` resumes without losing or repeating a line, and
never counts a line that this config would not have written.

Each rank appends to its own ``predictions-rank<r>.jsonl`` in ``output_dir`` and flushes + fsyncs after
every batch. On start, global rank 0, alone and before any model is loaded:

- refuses a prediction file, ``manifest.json`` or lock that is a link (:mod:`pargs.lit.regular_files`): resume
  would write through it, into a file outside the directory;
- takes the directory's lock (:mod:`pargs.lit.run_lock`): a second run on the same directory stops with a
  message naming the holder, instead of writing every line twice;
- checks that the directory and its files can be written (one message, not a traceback);
- cuts a torn last line (a process killed mid-write) off every prediction file, whichever rank wrote it, so
  a resumed run on fewer processes repairs the files no process appends to any more;
- compares what made the lines already there with what this config would make (:mod:`pargs.lit.resume_check`)
  and records this config's settings in ``manifest.json`` before the first line of a method is written;
- with ``reuse_from``, copies the lines of that directory which this config would write (:mod:`pargs.lit.reuse`).

The other ranks wait for its verdict (a broadcast), then every rank hands the keys (prompt id, method,
sample) of every complete line in the directory to the decoding module, which skips them. Restarting with
the same config therefore finishes the job, with every key exactly once, also on a different number of
processes.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import lightning as L
from lightning.pytorch.callbacks import BasePredictionWriter

from pargs.errors import ConfigError
from pargs.lit.manifest import MANIFEST, read_manifest
from pargs.lit.regular_files import append_file, open_for_writing, refuse_links
from pargs.lit.resume_check import ON_CHANGE, check_and_record, complete_lines, current_prompts
from pargs.lit.reuse import reuse_lines
from pargs.lit.run_lock import PREDICT, DirectoryLock, acquire
from pargs.models.identity import FileDigests
from pargs.records import json_line

log = logging.getLogger(__name__)

Key = tuple[str, str, int]

#: how a message says where else to write
ELSEWHERE = "write to another directory (pargs predict --predictions DIR)"


def prediction_files(output_dir: str | os.PathLike) -> list[Path]:
    """The prediction files of a run directory, in a stable order."""
    return sorted(Path(output_dir).glob("predictions-rank*.jsonl"))


def file_rank(path: Path) -> int | None:
    """The rank in ``predictions-rank<r>.jsonl`` (None for another name)."""
    suffix = path.stem.removeprefix("predictions-rank")
    return int(suffix) if suffix.isdigit() else None


def repair_tail(path: Path) -> int:
    """Cut an incomplete last line (no newline) off ``path``; return the bytes removed. The file is opened for
    writing only when there is something to cut, and never through a link."""
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
    fd = open_for_writing(path, os.O_WRONLY, ELSEWHERE)
    try:
        os.ftruncate(fd, keep)
        os.fsync(fd)
    finally:
        os.close(fd)
    return size - keep


def completed_keys(output_dir: str | os.PathLike) -> set[Key]:
    """Keys of every complete line already written in ``output_dir`` (torn tails ignored)."""
    done: set[Key] = set()
    for path in prediction_files(output_dir):
        for _, rec in complete_lines(path):
            done.add((str(rec["id"]), rec["method"], int(rec["sample"])))
    return done


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
        reuse_from: another predictions directory whose lines this config would write are copied instead of
            decoded again (:mod:`pargs.lit.reuse`); ``pargs predict --predictions DIR`` sets it to the
            config's own ``output_dir``, ``--reuse_from`` to any directory (or ``none``).
    """

    def __init__(
        self,
        output_dir: str,
        on_change: Literal["refuse", "restart", "adopt"] = "refuse",
        reuse_from: str | None = None,
    ) -> None:
        super().__init__(write_interval="batch")
        if on_change not in ON_CHANGE:
            raise ConfigError(
                f"JsonlPredictionWriter: on_change must be one of {', '.join(ON_CHANGE)}, got {on_change!r}"
            )
        self.output_dir = Path(output_dir)
        self.on_change = on_change
        self.reuse_from = reuse_from
        self.done: set[Key] = set()
        self.written = 0  #: lines this process decoded and wrote in this run
        self.reused = 0  #: lines copied from ``reuse_from`` (global rank 0)
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
            self._fh = append_file(self.output_dir / f"predictions-rank{rank}.jsonl", ELSEWHERE)

    def _prepare(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Rank 0's part of :meth:`setup` (module docstring): lock, check, repair, compare and record."""
        with _writable(self.output_dir):
            self.output_dir.mkdir(parents=True, exist_ok=True)
            refuse_links(
                [self.output_dir / PREDICT.name, self.output_dir / MANIFEST, *prediction_files(self.output_dir)],
                ELSEWHERE,
            )
            self._lock = acquire(self.output_dir, ELSEWHERE)
            files = prediction_files(self.output_dir)
            for path in files:  # each file can be appended to, before anything is changed
                os.close(open_for_writing(path, os.O_WRONLY | os.O_APPEND, ELSEWHERE))
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
            if self.reuse_from and settings is not None:
                done = completed_keys(self.output_dir)
                self.reused = sum(
                    reuse_lines(self.reuse_from, self.output_dir, settings, prompts, done, ELSEWHERE).values()
                )

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx=0):
        if not prediction:
            return
        try:
            data = "".join(map(json_line, prediction)).encode("utf-8")
        except ValueError as err:  # a non-finite number: DecodeModule stops before, this is the last guard
            raise ConfigError(
                f"a prediction of this batch cannot be written as JSON ({err}); nothing of it is written"
            ) from None
        self._append(data)
        self.written += len(prediction)
        self.done.update((str(r["id"]), r["method"], int(r["sample"])) for r in prediction)

    def summary(self) -> str:
        """One line for the end of ``pargs predict``: what the directory holds now, and the next command."""
        total = len(completed_keys(self.output_dir))
        reused = f", {self.reused} copied from {self.reuse_from}" if self.reused else ""
        return (
            f"{self.output_dir} holds {total} prediction lines ({self.written} decoded by this process{reused}); "
            f"next: pargs report {self.output_dir}"
        )

    def _append(self, data: bytes) -> None:
        """Write a batch's lines and fsync them. A write that fails (a full disk) is undone, so the file keeps
        complete lines only, and the run stops with one line: the same command resumes after the lines kept."""
        start = os.lseek(self._fh.fileno(), 0, os.SEEK_END)
        try:
            view = memoryview(data)
            while view:
                view = view[self._fh.write(view) :]
            os.fsync(self._fh.fileno())
        except OSError as err:
            try:
                os.ftruncate(self._fh.fileno(), start)  # frees what the failed write took
                kept = "this batch's lines were not written"
            except OSError:
                kept = "a torn last line, which the next run cuts off"
            raise ConfigError(
                f"cannot write to {self._fh.name}: {err.strerror or err}; the lines written before are complete "
                f"and kept ({kept}); free space or fix the cause, then run the same command again: it resumes "
                "after them"
            ) from None

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
