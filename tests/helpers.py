"""Shared test helpers: one-step CLI configs, and callbacks that interrupt runs the way the real world does
(for the resume tests)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import lightning as L
import pytest
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


#: prediction-line fields computed by a reward model over a padded batch: the batch's composition (which rows,
#: how much padding) changes the float rounding of the forward pass, so the same line decoded in another batch
#: (another process count, a resumed run) can differ in the last bits. float32 keeps ~7 significant digits and
#: a few layers of rounding reach ~1e-6 relative (measured: -5.05615234375 vs -5.056152820587158, 2 processes vs
#: 1 on an Intel Xeon); a real change in what was decoded moves them far more.
BATCH_DEPENDENT_FLOATS = ("reward", "scorer_reward")


def assert_same_predictions(got: dict, want: dict, rtol: float = 1e-5, atol: float = 1e-6) -> None:
    """Prediction lines keyed by (id, method, sample) are the same: the keys and every field exactly (ids,
    text, token counts, stop reasons, seeds, FLOPs), except :data:`BATCH_DEPENDENT_FLOATS`, compared within
    float32 tolerance."""
    assert sorted(got) == sorted(want), "the two runs wrote different (id, method, sample) keys"
    for key, line in want.items():
        exact = {f: v for f, v in line.items() if f not in BATCH_DEPENDENT_FLOATS}
        assert {f: v for f, v in got[key].items() if f not in BATCH_DEPENDENT_FLOATS} == exact, key
        for field in BATCH_DEPENDENT_FLOATS:
            assert (field in got[key]) == (field in line), (key, field)
            if line.get(field) is None:
                assert got[key].get(field) is None, (key, field)
            else:
                assert got[key][field] == pytest.approx(line[field], rel=rtol, abs=atol), (key, field)


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
    """Append ``{"step", "epoch", "logger_step", "loss"}`` of every training step to a JSONL file (``logger_step``:
    the step Lightning gives the loggers, private to Lightning, recorded because a resumed run must keep it)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        import json

        with open(self.path, "a") as fh:
            # a manually optimised module (PPO) returns no loss: record its rollouts' mean reward instead
            has_loss = isinstance(outputs, dict) and "loss" in outputs
            loss = outputs["loss"] if has_loss else trainer.callback_metrics["train/reward"]
            logger_step = trainer.fit_loop.epoch_loop._batches_that_stepped
            record = {"step": trainer.global_step, "epoch": trainer.current_epoch, "logger_step": logger_step}
            fh.write(json.dumps({**record, "loss": float(loss)}) + "\n")


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


class SignalAt(L.Callback):
    """Send ``signum`` (SIGTERM unless told) to this process once, as ``timeout`` or ``scancel`` would, at a known
    point: in the hook named ``hook`` once ``trainer.global_step`` is ``step`` and the hook's batch index is
    ``batch`` (``on_train_batch_start``: the signal comes during training step ``step + 1``;
    ``on_validation_batch_start``: during a validation, the sanity check excepted; ``on_train_epoch_end``: at
    an epoch's end, before the end-of-epoch checkpoint; ``on_predict_batch_end``: once batch ``batch`` is
    written, if this callback comes after the prediction writer). ``times=2`` sends it twice in a row: a
    second signal while the first is being handled. ``rank``: only that process of a multi-process run gets it.
    """

    def __init__(
        self,
        hook: str,
        step: int = 0,
        batch: int = 0,
        signum: int = int(signal.SIGTERM),
        times: int = 1,
        rank: int | None = None,
    ) -> None:
        self.hook, self.step, self.batch, self.signum, self.times, self.rank = hook, step, batch, signum, times, rank
        self.sent = False

    def _at(self, hook: str, trainer, batch_idx: int = 0) -> None:
        if self.sent or hook != self.hook or trainer.sanity_checking:
            return
        if self.rank is not None and trainer.global_rank != self.rank:
            return
        if trainer.global_step == self.step and batch_idx == self.batch:
            self.sent = True
            for _ in range(self.times):
                os.kill(os.getpid(), self.signum)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._at("on_train_batch_start", trainer)

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        self._at("on_validation_batch_start", trainer, batch_idx)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._at("on_train_epoch_end", trainer)

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._at("on_predict_batch_end", trainer, batch_idx)
