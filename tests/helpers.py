"""Shared test helpers: one-step CLI configs, and callbacks that interrupt runs the way the real world does
(for the resume tests)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import lightning as L
import yaml


def fit_yaml(tmp_path: Path, model: dict, data: dict) -> Path:
    """``tmp_path/fit.yaml``: a one-step CPU fit of ``model`` on ``data`` (class_path + init_args each), with no
    logger, progress bar or checkpoint."""
    trainer = {
        "accelerator": "cpu",
        "max_steps": 1,
        "logger": False,
        "enable_progress_bar": False,
        "enable_checkpointing": False,
        "default_root_dir": str(tmp_path),
    }
    path = tmp_path / "fit.yaml"
    path.write_text(yaml.safe_dump({"trainer": trainer, "model": model, "data": data}))
    return path


def predict_yaml(tmp_path: Path, decode_args: dict, prompt_args: dict) -> Path:
    """``tmp_path/predict.yaml``: a CPU ``DecodeModule(**decode_args)`` over ``PromptDataModule(**prompt_args)``,
    written by the JSONL writer to ``tmp_path/preds``."""
    writer = {"class_path": "pargs.lit.JsonlPredictionWriter", "init_args": {"output_dir": str(tmp_path / "preds")}}
    cfg = {
        "trainer": {
            "accelerator": "cpu",
            "logger": False,
            "enable_progress_bar": False,
            "default_root_dir": str(tmp_path),
            "callbacks": [writer],
        },
        "return_predictions": False,
        "model": {"class_path": "pargs.lit.DecodeModule", "init_args": decode_args},
        "data": {"class_path": "pargs.datamodules.PromptDataModule", "init_args": prompt_args},
    }
    path = tmp_path / "predict.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


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


class _FullDisk:
    """A prediction file on a disk that fills up: each write puts half its bytes down, then fails with ENOSPC."""

    def __init__(self, fh) -> None:
        self._fh = fh

    def write(self, data) -> int:
        import errno

        self._fh.write(bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name):
        return getattr(self._fh, name)


class DiskFullAt(L.Callback):
    """From predict batch ``batch`` on, the disk under the prediction writer's file is full (:class:`_FullDisk`)."""

    def __init__(self, batch: int) -> None:
        self.batch = batch

    def on_predict_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        if batch_idx == self.batch:
            from pargs.lit.writer import JsonlPredictionWriter

            writer = next(cb for cb in trainer.callbacks if isinstance(cb, JsonlPredictionWriter))
            writer._fh = _FullDisk(writer._fh)
