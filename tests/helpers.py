"""Callbacks that interrupt runs the way the real world does (for the resume tests)."""

from __future__ import annotations

import os
import signal

import lightning as L


class Interrupted(RuntimeError):
    """Raised by :class:`StopTrainingAt` to end a fit abruptly."""


class StopTrainingAt(L.Callback):
    """Abort ``fit`` with an exception once ``global_step`` reaches ``step`` (before that step's checkpoint)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step >= self.step:
            raise Interrupted(f"stopped at step {trainer.global_step}")


class KillDuringPredict(L.Callback):
    """SIGKILL this process after predict batch ``batch``, leaving half a line in the rank's file.

    Put it after the prediction writer in ``trainer.callbacks`` so the batch is written first; the
    torn half line is what a kill in the middle of a write leaves behind.
    """

    def __init__(self, output_dir: str, batch: int) -> None:
        self.output_dir, self.batch = output_dir, batch

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if batch_idx == self.batch:
            with open(os.path.join(self.output_dir, f"predictions-rank{trainer.global_rank}.jsonl"), "a") as fh:
                fh.write('{"id": "torn", "method": "pa')
                fh.flush()
                os.fsync(fh.fileno())
            os.kill(os.getpid(), signal.SIGKILL)


class PauseDuringPredict(L.Callback):
    """Hold a predict run before its first batch: print ``PAUSED`` to stderr, then wait until someone writes
    to the FIFO ``go`` (a test reads the run's stderr up to the line, acts, then lets it go on; no sleeping)."""

    def __init__(self, go: str) -> None:
        self.go = go

    def on_predict_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        if batch_idx == 0:
            import sys

            print("PAUSED", file=sys.stderr, flush=True)
            with open(self.go) as fh:  # opening a FIFO blocks until a writer opens it
                fh.read()


class RecordLosses(L.Callback):
    """Append ``{"step", "loss"}`` of every training step to a JSONL file."""

    def __init__(self, path: str) -> None:
        self.path = path

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        import json

        with open(self.path, "a") as fh:
            # a manually optimised module (PPO) returns no loss: record its rollouts' mean reward instead
            has_loss = isinstance(outputs, dict) and "loss" in outputs
            loss = outputs["loss"] if has_loss else trainer.callback_metrics["train/reward"]
            fh.write(json.dumps({"step": trainer.global_step, "loss": float(loss)}) + "\n")


class RecordValidation(L.Callback):
    """Append ``{"epoch", "step", "val/loss"}`` of every validation run (not the sanity check) to a JSONL file."""

    def __init__(self, path: str) -> None:
        self.path = path

    def on_validation_end(self, trainer, pl_module) -> None:
        import json

        if trainer.sanity_checking:
            return
        with open(self.path, "a") as fh:
            loss = float(trainer.callback_metrics["val/loss"])
            fh.write(json.dumps({"epoch": trainer.current_epoch, "step": trainer.global_step, "val/loss": loss}) + "\n")
