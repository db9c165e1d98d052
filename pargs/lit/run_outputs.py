"""Where a Lightning command writes, so that no run overwrites or mixes with another run's outputs.

- **The config beside the outputs.** LightningCLI saves the resolved config to ``trainer.log_dir``, which
  without a logger is ``default_root_dir``: ``pargs predict ... --predictions runs/beta3`` overwrote the
  ``config.yaml`` of the run whose config it started from. :class:`RunConfigCallback` saves it where this
  run's outputs are: ``predict`` into its predictions directory, ``fit``/``validate``/``test`` into the
  logger's version directory, else the checkpoint directory, else ``default_root_dir``.
- **A fresh fit does not write into an earlier run.** A ``fit`` without ``--ckpt_path`` whose checkpoint
  directory already holds checkpoints, or whose ``export_dir`` already holds a model, is refused with one
  line (``ModelCheckpoint`` would add ``last-v1.ckpt`` next to the earlier run's ``last.ckpt``, and the
  export would replace the model that earlier predictions were made with). ``--ckpt_path last`` resumes
  that run; ``--overwrite true`` replaces it (its checkpoints are removed before training starts, its
  export when the new one is written).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import SaveConfigCallback

from pargs.errors import ConfigError
from pargs.lit.preflight import checkpoint_dir
from pargs.lit.writer import JsonlPredictionWriter

log = logging.getLogger(__name__)

_SHOWN = 4  # file names listed in a message


def config_dir(trainer, stage: str) -> str:
    """Where this run's ``config.yaml`` goes (module docstring)."""
    if stage == "predict":
        writer = next((c for c in trainer.callbacks if isinstance(c, JsonlPredictionWriter)), None)
        if writer is not None:
            return str(writer.output_dir)
    if not trainer.loggers:
        dirpaths = [c.dirpath for c in trainer.callbacks if isinstance(c, ModelCheckpoint) and c.dirpath]
        if dirpaths:
            return str(dirpaths[0])
    return trainer.log_dir


class RunConfigCallback(SaveConfigCallback):
    """LightningCLI's config saving, into :func:`config_dir` (rank 0 writes; every rank agrees it is done)."""

    def setup(self, trainer, pl_module, stage: str) -> None:
        if self.already_saved:
            return
        folder = trainer.strategy.broadcast(config_dir(trainer, stage))
        if trainer.is_global_zero:
            os.makedirs(folder, exist_ok=True)
            path = os.path.join(folder, self.config_filename)
            self.parser.save(self.config, path, skip_none=False, overwrite=True, multifile=self.multifile)
            self.save_config(trainer, pl_module, stage)
            self.already_saved = True
        self.already_saved = trainer.strategy.broadcast(self.already_saved)


def checkpoint_dirs(trainer) -> list[Path]:
    """The directories this fit's checkpoint callbacks save to (as Lightning will resolve them)."""
    return [Path(checkpoint_dir(c, trainer)) for c in trainer.callbacks if isinstance(c, ModelCheckpoint)]


def _checkpoints_in(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.ckpt")) if folder.is_dir() else []  # a sharded checkpoint is a *.ckpt directory


def _names(paths: list[Path]) -> str:
    shown = ", ".join(p.name for p in paths[:_SHOWN])
    return shown + (f" and {len(paths) - _SHOWN} more" if len(paths) > _SHOWN else "")


def check_fresh_fit(trainer, model, overwrite: bool) -> None:
    """Refuse (or, with ``overwrite``, clear the checkpoints of) an earlier run in this fit's directories."""
    found = [(folder, _checkpoints_in(folder)) for folder in checkpoint_dirs(trainer)]
    found = [(folder, ckpts) for folder, ckpts in found if ckpts]
    export_dir = (getattr(model, "hparams", None) or {}).get("export_dir")
    exported = bool(export_dir) and Path(export_dir).is_dir() and any(Path(export_dir).iterdir())
    if not found and not exported:
        return
    if overwrite:
        for folder, ckpts in found:
            for path in ckpts:  # tolerant: every process of a multi-process run may get here
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
            log.warning("--overwrite: removed the checkpoints of an earlier run from %s (%s)", folder, _names(ckpts))
        if exported:
            log.warning("--overwrite: the model in %s is replaced when this run exports", export_dir)
        return
    held = [f"{folder} holds the checkpoints of an earlier run ({_names(ckpts)})" for folder, ckpts in found]
    if exported:
        held.append(f"export_dir {export_dir} holds an exported model")
    raise ConfigError(
        "; ".join(held) + ". A fresh fit would mix with or replace them: resume that run (--ckpt_path last), "
        "write this one elsewhere (other trainer.default_root_dir, checkpoint dirpath and model.init_args.export_dir "
        "in the config) or replace that run (--overwrite true)"
    )
