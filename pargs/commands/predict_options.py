"""``pargs predict`` options that change a predict config without editing it.

- ``--predictions DIR``: where the prediction writer writes (its ``output_dir``), e.g. to try a new beta
  next to the first run: ``pargs predict -c CFG --method pargs.beta=3 --predictions runs/beta3``; the lines
  of the config's own directory that this config would write are copied, not decoded again
  (:mod:`pargs.lit.reuse`: there, only ``pargs`` is decoded);
- ``--reuse_from DIR|none``: copy those lines from DIR instead (``none``: decode everything);
- ``--on_change refuse|restart|adopt``: what the writer does with lines already there that this config
  would not write (:mod:`pargs.lit.resume_check`);
- ``--method NAME.FIELD=VALUE`` (repeatable): one field of one decoding method, the method found by its
  name (a preset's name when it has none), the value read as the config would read it (``3``,
  ``true``, ``null``, ``[a, b]``). ``--method pargs.name=pargs-b3`` renames it.

jsonargparse cannot address one item of a list (the writer is one of ``trainer.callbacks``, a method one
of ``model.init_args.methods``: ``--model.init_args.methods.4.beta 3`` is a parser error), so these options
are parsed next to the config and applied to the parsed config before any class is built; the
``config.yaml`` Lightning saves holds the result.
"""

from __future__ import annotations

import dataclasses
import importlib
import typing
from typing import Literal

from jsonargparse import ArgumentParser, Namespace

from pargs.errors import ConfigError
from pargs.lit.preflight import PreflightCLI
from pargs.lit.run_outputs import check_fresh_fit
from pargs.lit.writer import JsonlPredictionWriter

WRITER = f"{JsonlPredictionWriter.__module__.rpartition('.')[0]}.{JsonlPredictionWriter.__name__}"


def add_predict_options(parser) -> None:
    """Add ``--predictions``, ``--reuse_from``, ``--on_change`` and ``--method`` to a ``predict`` parser."""
    parser.add_argument(
        "--predictions",
        type=str | None,
        default=None,
        help="write the predictions to this directory (the prediction writer's output_dir)",
    )
    parser.add_argument(
        "--reuse_from",
        type=str | None,
        default=None,
        help="copy the lines of this predictions directory that this config would write instead of decoding them "
        "again (default with --predictions: the config's own output_dir; none: decode everything)",
    )
    parser.add_argument(
        "--on_change",
        type=Literal["refuse", "restart", "adopt"] | None,
        default=None,
        help="lines already written that this config would not write: refuse (default: stop and "
        "say what changed), restart (remove them and decode again), adopt (record this "
        "config's settings for lines without a record)",
    )
    parser.add_argument(
        "--method",
        action="append",
        default=[],
        metavar="NAME.FIELD=VALUE",
        help="set one field of one decoding method, e.g. --method pargs.beta=3 (repeatable)",
    )


def apply_predict_options(config: Namespace) -> None:
    """Apply the options of :func:`add_predict_options` to a parsed ``predict`` config (then clear them)."""
    given = [o for o in ("predictions", "reuse_from", "on_change") if config.get(o) is not None]
    if given:
        writer = _the_writer(config, f"--{given[0]}")
        if config.get("predictions") is not None:
            if writer.init_args.get("reuse_from") is None:  # the config's own lines: reuse what still holds
                writer.init_args.reuse_from = writer.init_args.output_dir
            writer.init_args.output_dir = config.predictions
        if config.get("reuse_from") is not None:
            writer.init_args.reuse_from = None if config.reuse_from.lower() == "none" else config.reuse_from
        if config.get("on_change") is not None:
            writer.init_args.on_change = config.on_change
    if config.get("method"):
        set_method_fields(config.model, config.method)
    config.predictions, config.reuse_from, config.on_change, config.method = None, None, None, []


def _import(class_path: str):
    module, _, name = class_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return None


def _the_writer(config: Namespace, option: str) -> Namespace:
    callbacks = config.trainer.get("callbacks") or []
    callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
    writers = [
        c
        for c in callbacks
        if isinstance(c, Namespace)
        and isinstance(_import(c.get("class_path", "")), type)
        and issubclass(_import(c.class_path), JsonlPredictionWriter)
    ]
    if len(writers) != 1:
        found = "has none" if not writers else f"has {len(writers)}"
        raise ConfigError(f"{option} sets the {WRITER} callback of trainer.callbacks, but the config {found}")
    return writers[0]


def _method_type(model: Namespace):
    """The class of the items of the model's ``methods`` (from its ``__init__`` annotation), or None."""
    cls = _import(model.get("class_path", "")) if isinstance(model, Namespace) else None
    try:
        hint = typing.get_type_hints(cls.__init__).get("methods") if cls is not None else None
    except Exception:
        return None
    args = typing.get_args(hint)
    return args[0] if args and isinstance(args[0], type) else None


_KINDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _value(raw: str, annotation, option: str, field: str):
    """``raw`` read as the config parser reads a value of type ``annotation``."""
    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--value", type=annotation)
    try:
        return parser.parse_args([f"--value={raw}"]).value
    except Exception:
        kinds = [a for a in typing.get_args(annotation) or (annotation,) if a is not type(None)]
        wanted = " or ".join(_KINDS.get(a, getattr(a, "__name__", str(a))) for a in kinds)
        raise ConfigError(f"--method {option}: {field} must be {wanted}, got {raw!r}") from None


def set_method_fields(model: Namespace, options: list[str]) -> None:
    """Apply ``NAME.FIELD=VALUE`` options to the parsed model config's ``methods`` (found by name, every
    option against the names of the config, so a renamed method is still found by its old name)."""
    init = model.get("init_args") if isinstance(model, Namespace) else None
    methods = init.get("methods") if isinstance(init, Namespace) else None
    if not isinstance(methods, list):
        where = model.get("class_path") if isinstance(model, Namespace) else "the model"
        raise ConfigError(f"--method sets a field of one of model.init_args.methods, but {where} has no `methods`")
    items = [m.init_args if "init_args" in m and "class_path" in m else m for m in methods]
    names = [m.get("name") or m.get("preset") for m in items]
    kind = _method_type(model)
    hints = typing.get_type_hints(kind) if kind is not None else {}
    if dataclasses.is_dataclass(kind):  # its fields, not its InitVars (DecodeMethod's `weight` is a renamed one)
        hints = {f.name: hints[f.name] for f in dataclasses.fields(kind)}
    changes = []
    for option in options:
        key, eq, raw = option.partition("=")
        name, dot, field = key.rpartition(".")
        if not (eq and dot and name and field):
            raise ConfigError(f"--method {option}: write NAME.FIELD=VALUE, e.g. --method pargs.beta=3")
        if name not in names:
            raise ConfigError(
                f"--method {option}: the config has no method named {name!r}; its methods: {', '.join(map(str, names))}"
            )
        item = items[names.index(name)]
        if field not in item or (hints and field not in hints):
            known = sorted(k for k in item.keys() if k in hints or not hints)
            raise ConfigError(f"--method {option}: a method has no field {field!r}; its fields: {', '.join(known)}")
        value = _value(raw, hints[field], option, field) if field in hints else _yaml_value(raw)
        changes.append((item, field, value))
    for item, field, value in changes:
        item[field] = value


def _yaml_value(raw: str):
    import yaml

    return yaml.safe_load(raw)


class PargsCLI(PreflightCLI):
    """:class:`PreflightCLI` whose ``predict`` also takes :func:`add_predict_options`, whose ``fit`` takes
    ``--overwrite`` and refuses to write into an earlier run's directories (:mod:`pargs.lit.run_outputs`), and
    whose trainer stops at a safe point on SIGTERM or SIGINT (:class:`pargs.lit.safe_stop.SafeStop`, told by
    :mod:`pargs.commands.signals`)."""

    _overwrite = False

    def instantiate_trainer(self, **kwargs):
        from pargs.commands import signals
        from pargs.lit.safe_stop import SafeStop

        trainer = super().instantiate_trainer(**kwargs)
        if not any(isinstance(c, SafeStop) for c in trainer.callbacks):
            trainer.callbacks.append(SafeStop(signals.requested, signals.say_saved))
        return trainer

    def _prepare_subcommand_parser(self, klass, subcommand: str, **kwargs):
        # LightningCLI (pinned in constraints.txt) builds each subcommand's parser here
        parser = super()._prepare_subcommand_parser(klass, subcommand, **kwargs)
        if subcommand == "predict":
            add_predict_options(parser)
        if subcommand == "fit":
            parser.add_argument(
                "--overwrite",
                type=bool,
                default=False,
                help="a fresh fit (no --ckpt_path) whose checkpoint directory or export_dir holds an earlier "
                "run's outputs replaces them (default: refuse, naming them)",
            )
        return parser

    def before_instantiate_classes(self) -> None:
        super().before_instantiate_classes()
        if self.subcommand == "predict":
            apply_predict_options(self.config["predict"])
        if self.subcommand == "fit":
            self._overwrite = bool(self.config["fit"].get("overwrite"))
            self.config["fit"].overwrite = False  # a runtime choice: the saved config does not carry it

    def after_instantiate_classes(self) -> None:
        super().after_instantiate_classes()
        if self.subcommand == "fit" and self.config_init["fit"].get("ckpt_path") is None:
            check_fresh_fit(self.trainer, self.model, self._overwrite)
