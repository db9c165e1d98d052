"""Where a resumed ``fit`` goes on: two corrections to how Lightning 2.6 restores its loops from a checkpoint.

Lightning restores the loops' progress counters and from them decides where the run goes on
(``_FitLoop.reset`` and ``_TrainingEpochLoop.reset``, lightning/pytorch/loops/). For two kinds of
checkpoint that the shipped configs write, it decides wrong:

1. **Saved at the end of an epoch** (ModelCheckpoint in ``on_train_epoch_end``: the quickstart's
   ``save_last``), after all of the epoch's batches. The epoch's ``completed`` counter is not yet
   incremented there. Without ``max_steps``, Lightning counts the epoch completed and starts the next
   one. With ``max_steps`` set, it treats every restored fit loop as restarting
   (``_FitLoop.restarting``), so it ends the finished epoch a second time: it counts one epoch too many,
   stops with "max_epochs reached" an epoch early, and the next epoch's data order comes from the
   epoch after it. The correction: go on as without ``max_steps``. The epoch counts as completed, and
   the next epoch starts afresh.
2. **Saved at a batch's end, before that batch's validation** (``every_n_train_steps`` on a validation
   batch; the validation runs after ``on_train_batch_end``). Lightning skips that validation on resume
   (the "fast forward" in ``_TrainingEpochLoop.advance``). At an epoch's last batch it also skips that
   epoch's end. The correction: resume as from a checkpoint taken while that validation was starting
   (Lightning's own "restarted mid-evaluation" path). So the validation runs, then the epoch ends or
   goes on.

Every other checkpoint is left to Lightning: a checkpoint from inside an epoch, from a validation's
end, or from an epoch cut short by ``max_steps`` or a stop. ``on_train_start`` calls
:func:`settle_resume_point`. By then the loops are restored and Lightning has made its decisions
(``update_restart_stage``), the data and validation schedule are known, and no batch has run.
tests/test_resume.py resumes from each kind of checkpoint with ``max_epochs`` and ``max_steps`` set.
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.loops import _Loop
from lightning.pytorch.loops.evaluation_loop import RestartStage as EvaluationStage
from lightning.pytorch.loops.training_epoch_loop import RestartStage as EpochStage


def settle_resume_point(trainer: L.Trainer) -> None:
    """Correct where a run restored from a checkpoint goes on (see the module's docstring); a run that is
    not resuming is left alone."""
    fit = trainer.fit_loop
    if not fit.restarting:
        return
    if fit.restarted_on_epoch_end and fit.epoch_loop._num_ready_batches_reached():
        _start_next_epoch(fit)
    elif fit.restarted_mid_epoch and fit.epoch_loop.restarted_on_train_batch_end:
        _validate_before_going_on(trainer)


def _start_next_epoch(fit) -> None:
    """Count the finished epoch as completed and restart nothing, as Lightning does without ``max_steps``."""
    fit.epoch_progress.increment_completed()
    for loop in (fit, fit.epoch_loop, fit.epoch_loop.val_loop):
        loop.reset_restart_stage()
    _Loop.restarting.fset(fit, False)  # the base class's setter: it also sets the inner loops


def _validate_before_going_on(trainer: L.Trainer) -> None:
    """Run the validation due after the checkpoint's batch (if one is due) before training goes on."""
    fit = trainer.fit_loop
    epoch = fit.epoch_loop
    # at an epoch's last batch, Lightning's reset counted the epoch as ended: take that back
    # (the validation schedule depends on the epoch, and the epoch's end has not run)
    ended = epoch.batch_progress.is_last_batch
    if ended:
        _count_epoch_end(fit, -1)
    if not epoch._should_check_val_fx(fit._data_fetcher):
        if ended:
            _count_epoch_end(fit, +1)
        return
    # the counters of a checkpoint saved while this validation was starting: the batch is completed,
    # the validation has run no batch
    epoch.batch_progress.increment_completed()
    epoch._restart_stage = EpochStage.RESTARTED_ON_LAST
    epoch.val_loop._restart_stage = EvaluationStage.RESTARTED_MID_EVALUATION
    _Loop.restarting.fset(epoch.val_loop, False)  # so the validation starts at its first batch


def _count_epoch_end(fit, n: int) -> None:
    """Add ``n`` to the epoch counters that ``on_train_epoch_end`` moves (``processed`` and ``completed``)."""
    for counts in (fit.epoch_progress.current, fit.epoch_progress.total):
        counts.processed += n
        counts.completed += n
