"""Where a Lightning run stops when SIGTERM or SIGINT asks it to, and what it saves first.

Lightning 2.6 handles SIGTERM itself, for the length of a run: its handler sets ``trainer.received_sigterm``
(and passes the signal on to the processes it launched), and its loops raise ``SIGTERMException`` at
their next check: at the end of a training step (after that step's validation), at the end of an epoch,
after a validation or test batch, and (multi-process) at the start of the next training step, where
rank 0's flag is broadcast. It saves nothing unless a ``ModelCheckpoint`` has ``save_on_exception``, and
``predict`` never checks. :class:`SafeStop` builds on that:

- **fit**: at the end of each training step (an optimizer step) it asks whether a stop was requested
  (rank 0 decides: its answer is broadcast) and if so sets Lightning's flag, so every process stops at
  the end of that same step, or before that step's validation when one is due. When the run stops it
  saves ``last.ckpt`` into the first ``ModelCheckpoint``'s folder, where ``--ckpt_path last`` finds it,
  carrying the loop state of the moment it stopped at, each one a state Lightning resumes from:

  - after a step (and its validation, if one ran): the resumed run goes on with the next step;
  - as a validation starts (Lightning's "restarted mid-evaluation" state): the resumed run runs that
    validation in full first. A signal during a validation stops it after its current batch
    (Lightning's check); the checkpoint is then the one of that validation's start. Not the state of
    ``on_train_batch_end``, where ``ModelCheckpoint`` takes step checkpoints: from it Lightning skips
    the validation due at that step;
  - at an epoch's end (the state of Lightning's own end-of-epoch checkpoints): Lightning's own check
    there comes after it has counted the epoch as completed, and from that state it would skip the
    next epoch.

  Validation and the end-of-epoch hooks change no weights, optimizer, scheduler or data position, so
  the checkpoint resumes to what an uninterrupted run does (an epoch-interval learning-rate scheduler,
  which Lightning steps at an epoch's end before its check, would be stepped once more; pargs' modules
  step theirs per step). With no ``ModelCheckpoint``
  (``trainer.enable_checkpointing: false``) nothing is saved, and the line says so; a stopped fit
  exports nothing (``on_fit_end`` does not run).
- **predict**: before each batch: the batches before it were written and flushed by the prediction
  writer, whose lock is released when the run ends; the same command resumes. Each process decides for
  itself (no collective per batch: Lightning does not pad prediction data, so processes can have
  different numbers of batches, and each writes its own file). On several processes SIGTERM is recorded by
  pargs' own handler for the length of the predict and passed on to the processes Lightning launched:
  Lightning's handler runs a collective inside the handler, which a process that has run out of batches
  never joins.
- **validate, test**: Lightning stops after the current batch; nothing is saved (their metrics need
  every batch).

A stop requested before the run started (while models load) stops it before its first step.
``report`` is told what was kept, in words (:func:`pargs.commands.signals.say_saved` on the command line).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.exceptions import SIGTERMException

from pargs.errors import Stopped
from pargs.lit.preflight import checkpoint_dir
from pargs.lit.writer import JsonlPredictionWriter, rank_zero_value

log = logging.getLogger(__name__)


def _no_request() -> int | None:
    return None


def _mid_validation(loops: dict) -> dict:
    """A fit loop state taken as a validation starts, changed to say that its first batch has started: a run
    resumed from it validates first (Lightning's "restarted mid-evaluation"), then trains on."""
    progress = loops["epoch_loop.val_loop.batch_progress"]
    for counts in (progress["total"], progress["current"]):
        counts["ready"] += 1
        counts["started"] += 1
    return loops


class SafeStop(L.Callback):
    """Stop a fit, validate, test or predict run at a safe point once a stop is requested (module docstring).

    Args:
        requested: the signal that requested a stop where Lightning does not know of it (the command line's
            handler also sees a SIGINT, or a signal that came before the run), or None; Lightning's own
            SIGTERM flag counts too.
        report: told, in a few words, what the stopped run kept.
    """

    def __init__(
        self, requested: Callable[[], int | None] = _no_request, report: Callable[[str], None] = log.warning
    ) -> None:
        self.requested, self.report = requested, report
        self._step: int | None = None  # global step at the end of the last training step
        # where a fit is: None (no step trained yet), "step" (the live loop state resumes exactly), "validating"
        # or "epoch end" (a checkpoint must carry the loop state recorded when that began: self._loops)
        self._phase: str | None = None
        self._loops: dict | None = None
        self._stopping: int | None = None  # the signal a fit stops for, decided at the end of a step
        self._rewind_to: dict | None = None  # the fit loop state the checkpoint being saved carries
        self._saved: str | None = None
        self._predict_signal: int | None = None  # SIGTERM during a multi-process predict (_predict_handler)
        self._lightning_handler = None  # the SIGTERM handler _predict_handler stands in for

    def _local_signum(self, trainer: L.Trainer) -> int | None:
        """The signal that asks this process to stop, or None."""
        lightning = int(signal.SIGTERM) if trainer.received_sigterm else None
        return self.requested() or self._predict_signal or lightning

    def _signum(self, trainer: L.Trainer) -> int | None:
        """Rank 0's answer, on every rank (a collective: every process must ask at the same point)."""
        return rank_zero_value(trainer, self._local_signum(trainer))

    def _stop_lightning(self, trainer: L.Trainer) -> None:
        """Set the flag Lightning's SIGTERM handler sets, so its loops stop at their next check on every rank."""
        connector = getattr(trainer, "_signal_connector", None)
        if connector is not None:
            connector.received_sigterm = True

    # ------------------------------------------------------------------ fit
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._step, self._phase, self._loops, self._stopping, self._saved = None, None, None, None, None
        signum = self._signum(trainer)
        if signum:
            self.report(f"before its first training step (at step {trainer.global_step}): nothing new to save")
            raise Stopped(signum)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self._step:  # accumulating gradients: no optimizer step, no safe point
            return
        self._step, self._phase = trainer.global_step, "step"
        if self._stopping is None:
            self._stopping = self._signum(trainer)
            if self._stopping:  # stop before this step's validation, or else at the end of the step
                self._stop_lightning(trainer)

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn != TrainerFn.FITTING:
            self._stop_before("validation", trainer)
        elif not trainer.sanity_checking and self._phase is not None:
            self._phase, self._loops = "validating", _mid_validation(trainer.fit_loop.state_dict())
            if self._stopping:
                self._save(trainer)
                raise Stopped(self._stopping)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == TrainerFn.FITTING and self._phase == "validating":
            self._phase = "step"  # validated: a run resumed from the live state does not validate again

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning's last check comes after it has counted the epoch as completed, and a run resumed from
        # that state would skip the next epoch: a checkpoint then carries the state of this moment, that of
        # Lightning's own end-of-epoch checkpoints
        self._phase, self._loops = "epoch end", trainer.fit_loop.state_dict()
        if self._stopping is None:
            self._stopping = self._signum(trainer)
            if self._stopping:
                self._stop_lightning(trainer)

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        if self._rewind_to is not None:
            checkpoint["loops"]["fit_loop"] = self._rewind_to

    def _save(self, trainer: L.Trainer) -> None:
        """Save the resumable checkpoint of where the fit is (``_phase``) into the first ``ModelCheckpoint``'s
        folder; ``_saved`` says where."""
        step = self._step
        callback = next((c for c in trainer.checkpoint_callbacks if isinstance(c, ModelCheckpoint)), None)
        if callback is None:
            self._saved = (
                f"after step {step}; no checkpoint saved: the run has no ModelCheckpoint "
                "(trainer.enable_checkpointing is off), so a new run starts from the beginning"
            )
            return
        path = Path(checkpoint_dir(callback, trainer)) / f"{callback.CHECKPOINT_NAME_LAST}{callback.FILE_EXTENSION}"
        if trainer.is_global_zero and path.is_symlink():  # save_last: link; writing through it would change its target
            path.unlink()
        self._rewind_to = self._loops if self._phase in ("validating", "epoch end") else None
        try:
            trainer.save_checkpoint(path)
        finally:
            self._rewind_to = None
        resume = "--ckpt_path last" if callback.dirpath is not None else f"--ckpt_path {path}"
        self._saved = f"after step {step}; resumable checkpoint {path}; resume with {resume}"

    # ------------------------------------------------------------------ predict
    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        signum = self._signum(trainer)  # every process at once: a stop requested while the models loaded
        if signum:
            self._stop_predict(trainer, 0, 0, signum)
        if trainer.world_size > 1 and threading.current_thread() is threading.main_thread():
            self._lightning_handler = signal.signal(signal.SIGTERM, self._predict_handler(trainer))

    def _predict_handler(self, trainer: L.Trainer):
        """SIGTERM while several processes predict: recorded here and passed on to the processes Lightning
        launched, with no collective. Lightning 2.6.6's own handler broadcasts from rank 0 inside the handler,
        which the other process joins only from its own handler: one that has already run out of batches never
        does, and the run died with "Connection reset by peer" instead of stopping."""

        def handler(signum: int, frame) -> None:
            if self._predict_signal is None:
                self._predict_signal = signum
                launcher = trainer.strategy.launcher
                if launcher is not None:
                    launcher.kill(signum)
            elif os.environ.get("LOCAL_RANK", "0") == "0":  # a second one: stop now (a child gets copies)
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)

        return handler

    def _restore_signals(self) -> None:
        if self._lightning_handler is not None:
            signal.signal(signal.SIGTERM, self._lightning_handler)
            self._lightning_handler = None

    def on_predict_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._restore_signals()

    def on_predict_batch_start(self, trainer: L.Trainer, pl_module, batch, batch_idx: int, dataloader_idx: int = 0):
        # each process on its own, no collective: Lightning does not pad prediction data, so the processes may
        # have different numbers of batches, and each writes its own file; the SIGTERM handler passes the signal
        # on to the processes it launched, so each stops before its own next batch
        signum = self._local_signum(trainer)
        if signum:
            self._stop_predict(trainer, batch_idx, dataloader_idx, signum)

    def _stop_predict(self, trainer: L.Trainer, batch_idx: int, dataloader_idx: int, signum: int) -> None:
        total = trainer.num_predict_batches[dataloader_idx] if trainer.num_predict_batches else "?"
        writer = next((c for c in trainer.callbacks if isinstance(c, JsonlPredictionWriter)), None)
        kept = f"are in {writer.output_dir}; run the same command to resume" if writer else "were not saved (no writer)"
        self.report(f"before predict batch {batch_idx + 1} of {total}: the lines of the batches before it {kept}")
        raise Stopped(signum)

    # ------------------------------------------------------------------ validate, test
    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._stop_before("test", trainer)

    def _stop_before(self, stage: str, trainer: L.Trainer) -> None:
        signum = self._signum(trainer)
        if signum:
            self.report(f"before the {stage}: nothing to save")
            raise Stopped(signum)

    # ------------------------------------------------------------------ every stop ends here
    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._restore_signals()
        if not isinstance(exception, (SIGTERMException, Stopped)):
            return
        if trainer.state.fn == TrainerFn.FITTING:
            if self._saved is None and self._phase is not None:
                self._save(trainer)  # Lightning stopped at one of its own checks
            if self._saved is not None:
                self.report(self._saved)
            elif not isinstance(exception, Stopped):
                self.report("before its first training step: nothing new to save")
        elif trainer.state.fn in (TrainerFn.VALIDATING, TrainerFn.TESTING) and not isinstance(exception, Stopped):
            stage = "validation" if trainer.state.fn == TrainerFn.VALIDATING else "test"
            self.report(f"during the {stage}: nothing saved (its metrics need every batch)")
