"""What a Lightning command checks about ``--ckpt_path`` before it builds or writes anything.

:class:`PreflightCLI` is LightningCLI with these checks (``pargs fit/validate/test/predict`` use it):

- a checkpoint path that does not exist, or a file that does not load (truncated, corrupt) is one
  error naming the file and the other checkpoints of its directory. A path is checked before any
  class is built; ``last`` once they are built (it depends on the callbacks and the logger), still
  before Lightning writes anything (no logger run directory, no ``config.yaml``);
- a checkpoint of another module class than the config's (a ``RewardModule`` checkpoint given to a
  ``DecodeModule`` config) is refused, naming both classes;
- ``--ckpt_path last`` looks where Lightning does (the ``last*.ckpt`` of every checkpoint callback's
  directory); when there is none it is an error naming the directories searched, where Lightning
  would only warn and train from step 0;
- **the config decides**: LightningCLI would replace the config's model arguments by those stored in
  a checkpoint given as a path (not for ``last``), so a resumed run exported to the checkpoint's
  ``export_dir`` and ignored any change made to the config. Here the config's values are used, and
  those that differ from the checkpoint's are listed in one warning line. ``export_dir`` (where
  outputs go) and the data loader's ``num_workers`` (no effect on what is trained) are not compared.

Model and tokenizer paths are checked then too (``check_model_sources`` of a pargs module, which only
looks whether they exist). The data files are read (and so checked) before anything is written too: a pargs datamodule's
``setup`` runs once the classes are built, in every process, before Lightning makes the logger's run
directory, so a bad file leaves no empty ``version_0`` behind (``setup`` keeps what it read). It is
not Lightning's ``prepare_data``: that runs on rank 0 only, and the other ranks would die in a barrier
with a traceback instead of the one line.
"""

from __future__ import annotations

import importlib
import logging
import os
import pickle
import re
from pathlib import Path

import torch
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.callbacks import ModelCheckpoint, OnExceptionCheckpoint
from lightning.pytorch.cli import LightningCLI

from pargs.errors import ConfigError

log = logging.getLogger(__name__)

#: hyperparameters that may differ between a checkpoint and the config without a warning
NOT_COMPARED = {
    "model": {"export_dir", "_class_path", "_instantiator"},
    "data": {"num_workers", "_class_path", "_instantiator"},
}
#: ``--ckpt_path`` values that are not a local path (Lightning resolves them itself)
_SPECIAL = ("best", "hpc", "registry")
_LAST = re.compile(rf"^{ModelCheckpoint.CHECKPOINT_NAME_LAST}(-\d+)?\{ModelCheckpoint.FILE_EXTENSION}$")


class PreflightCLI(LightningCLI):
    """``LightningCLI`` whose ``--ckpt_path`` is checked first and never overrides the config's model."""

    _checkpoint: dict | None = None

    def _parse_ckpt_path(self) -> None:
        # replaces LightningCLI's, which merges the checkpoint's hyperparameters into the config
        sub = self.config.get("subcommand")
        if not sub:
            return
        path = _local_path(self.config[sub].get("ckpt_path"))
        if path is not None and path != "last":
            self._checkpoint = read_checkpoint(path, weights_only=self.config[sub].get("weights_only") is not False)
            check_module_class(
                self._checkpoint, _configured_class(self.config[sub].get("model"), self._model_class), path
            )

    def after_instantiate_classes(self) -> None:
        super().after_instantiate_classes()
        sub = self.subcommand
        if sub is None:
            return
        options = self.config_init[sub]
        if _local_path(options.get("ckpt_path")) == "last":
            path = find_last_checkpoint(self.trainer)
            self._checkpoint = read_checkpoint(path, weights_only=options.get("weights_only") is not False)
            check_module_class(self._checkpoint, type(self.model), path)
            options["ckpt_path"] = path  # what was checked is what Lightning loads
        if self._checkpoint is not None:
            warn_differences(self._checkpoint, self.model, self.datamodule, str(options["ckpt_path"]))
        if hasattr(self.model, "check_model_sources"):  # pargs modules: model paths exist (stat only)
            self.model.check_model_sources()
        read_data_files(self.datamodule, sub)


def _local_path(ckpt_path) -> str | None:
    """``ckpt_path`` when it names a local file or ``last``; None when unset, special or remote."""
    if ckpt_path is None:
        return None
    ckpt_path = str(ckpt_path)
    if ckpt_path in _SPECIAL or ckpt_path.startswith(_SPECIAL[2] + ":") or "://" in ckpt_path:
        return None
    return ckpt_path


def _import(class_path: str) -> type | None:
    module, _, name = class_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return None


def _configured_class(model_config, default: type) -> type:
    class_path = model_config.get("class_path") if model_config is not None else None
    return (_import(class_path) if class_path else None) or default


def _other_checkpoints(path: Path) -> str:
    """The other checkpoints next to ``path``, newest first, as one clause."""
    folder = path.parent
    others = sorted((p for p in folder.glob("*.ckpt") if p != path), key=lambda p: p.stat().st_mtime, reverse=True)
    if not others:
        return f"there is no other checkpoint in {folder}: drop --ckpt_path to start from scratch"
    more = ", ".join(p.name for p in others[1:6]) + (f" and {len(others) - 6} more" if len(others) > 6 else "")
    return f"resume from an earlier checkpoint: --ckpt_path {others[0]}" + (f" (older: {more})" if more else "")


def read_checkpoint(path: str, weights_only: bool = True) -> dict:
    """The checkpoint at ``path`` with its tensors memory-mapped (so reading its header costs little), or
    ``{}`` for a sharded checkpoint directory (Lightning reads those itself).

    Raises :class:`ConfigError` when the path does not exist or the file does not load.
    """
    file = Path(path)
    if file.is_dir():
        return {}
    if not file.exists():
        there = sorted(p.name for p in file.parent.glob("*.ckpt")) if file.parent.is_dir() else []
        names = ", ".join(there[:6]) + (f" and {len(there) - 6} more" if len(there) > 6 else "")
        where = f"; the checkpoints in {file.parent}: {names}" if there else ""
        raise ConfigError(f"checkpoint {path} (--ckpt_path) does not exist{where}")
    try:
        try:
            return torch.load(file, map_location="cpu", weights_only=weights_only, mmap=True)
        except RuntimeError as err:
            if "mmap" not in str(err):  # a file in torch's legacy (not zip) format cannot be memory-mapped
                raise
            return torch.load(file, map_location="cpu", weights_only=weights_only)
    except pickle.UnpicklingError as err:
        if weights_only and "Weights only load failed" in str(err):
            raise ConfigError(
                f"checkpoint {path} holds objects other than plain data (tensors, numbers, strings, lists, dicts), "
                "so it does not load with weights_only=True; if you trust it, add --weights_only false"
            ) from None
        raise ConfigError(
            f"checkpoint {path} cannot be read ({_first_line(err)}): it is truncated or corrupt; "
            f"{_other_checkpoints(file)}"
        ) from None
    except Exception as err:  # torch reports a torn file as RuntimeError, EOFError, ValueError... depending on where
        raise ConfigError(
            f"checkpoint {path} cannot be read ({_first_line(err)}): it is truncated or corrupt; "
            f"{_other_checkpoints(file)}"
        ) from None


def _first_line(err: BaseException) -> str:
    """The error's first sentence (torch's zip reader adds a paragraph about its internals)."""
    text = (str(err).strip().splitlines() or [type(err).__name__])[0].split(". ")[0].rstrip(".")
    return text if len(text) <= 120 else text[:117] + "..."


def check_module_class(checkpoint: dict, configured: type, path: str) -> None:
    """Refuse a checkpoint written by another module class than ``configured`` (a subclass of the
    checkpoint's class is accepted). Checkpoints saved outside LightningCLI record no class: not checked."""
    stored_path = checkpoint.get("hyper_parameters", {}).get("_class_path")
    if not stored_path:
        return
    stored = _import(stored_path)
    if stored is not None and issubclass(configured, stored):
        return
    configured_path = f"{configured.__module__}.{configured.__qualname__}"
    raise ConfigError(
        f"checkpoint {path} holds a {stored_path} but the config's model is a {configured_path}: give a checkpoint "
        f"of a {configured.__qualname__} (or a config for a {stored_path.rpartition('.')[2]}), or drop --ckpt_path"
    )


def checkpoint_dir(callback: ModelCheckpoint, trainer) -> str:
    """Where ``callback`` saves (as ``ModelCheckpoint`` resolves it at setup)."""
    if callback.dirpath is not None:
        return str(callback.dirpath)
    if trainer.loggers:
        logger = trainer.loggers[0]
        version = logger.version if isinstance(logger.version, str) else f"version_{logger.version}"
        return os.path.join(logger.save_dir or trainer.default_root_dir, str(logger.name), version, "checkpoints")
    return os.path.join(trainer.default_root_dir, "checkpoints")


def find_last_checkpoint(trainer) -> str:
    """The newest ``last*.ckpt`` of the trainer's checkpoint callbacks (or an on-exception checkpoint),
    where ``--ckpt_path last`` makes Lightning look. Raises :class:`ConfigError` when there is none."""
    candidates, searched, hints = [], [], []
    for callback in trainer.callbacks:
        if isinstance(callback, OnExceptionCheckpoint):
            candidates.append(Path(callback.ckpt_path))
        if not isinstance(callback, ModelCheckpoint):
            continue
        folder = Path(checkpoint_dir(callback, trainer))
        searched.append(str(folder))
        if folder.is_dir():
            candidates += [p for p in folder.iterdir() if _LAST.match(p.name)]
        if not callback.save_last:
            hints.append("its checkpoint callback has no save_last: true")
        if callback.dirpath is None:
            hints.append("its checkpoint callback has no dirpath, so every run saves under a new logger version")
    candidates = [p for p in candidates if p.exists()]
    if candidates:
        return str(max(candidates, key=lambda p: p.stat().st_mtime))
    where = f"in {', '.join(searched)}" if searched else "(checkpointing is off: trainer.enable_checkpointing)"
    hint = f" ({'; '.join(hints)})" if hints else ""
    raise ConfigError(
        f"--ckpt_path last: no checkpoint to resume from {where}{hint}; drop --ckpt_path to start from scratch"
    )


def _flat(values, prefix: str, skip: set[str]) -> dict:
    out = {}
    for key, value in dict(values).items():
        if key in skip:
            continue
        if isinstance(value, dict) and value:
            out.update(_flat(value, f"{prefix}{key}.", set()))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def config_differences(checkpoint: dict, model_hparams, data_hparams) -> list[str]:
    """``"key: checkpoint value -> config value"`` for every model and data hyperparameter that differs."""
    lines = []
    for part, stored, current in (
        ("model", checkpoint.get("hyper_parameters"), model_hparams),
        ("data", checkpoint.get("datamodule_hyper_parameters"), data_hparams),
    ):
        if not stored or current is None:
            continue
        old, new = _flat(stored, f"{part}.", NOT_COMPARED[part]), _flat(current, f"{part}.", NOT_COMPARED[part])
        for key in sorted(old.keys() | new.keys()):
            a, b = old.get(key, "(unset)"), new.get(key, "(unset)")
            if a != b:
                lines.append(f"{key}: {_short(a)} -> {_short(b)}")
    return lines


def warn_differences(checkpoint: dict, model, datamodule, path: str) -> None:
    """One warning line listing the hyperparameters in which the config differs from the checkpoint."""
    data_hparams = getattr(datamodule, "hparams", None) if datamodule is not None else None
    differences = config_differences(checkpoint, getattr(model, "hparams", None), data_hparams)
    if differences and getattr(rank_zero_only, "rank", 0) == 0:
        log.warning(
            "the config differs from checkpoint %s (the config's values are used): %s", path, "; ".join(differences)
        )


def read_data_files(datamodule, stage: str) -> None:
    """Run a pargs datamodule's ``setup`` for ``stage`` now: it reads and checks its files (once; Lightning's
    later call keeps them). Datamodules from elsewhere are left to Lightning, which may not expect it."""
    if datamodule is not None and type(datamodule).__module__.startswith("pargs."):
        datamodule.setup(stage)
