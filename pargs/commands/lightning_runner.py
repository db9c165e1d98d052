"""``pargs fit | validate | test | predict``: LightningCLI with pargs' modules and pargs' error messages.

The quickstart and the sweep run their steps through :func:`lightning_cli` too, so a config that works
by hand works there. Lightning is imported inside the function: importing this module costs nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from pargs.errors import ConfigError

LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")

# jsonargparse lines that repeat the whole parsed config instead of saying what is wrong
_PARSER_NOISE = (
    "Given value",
    "Subtypes:",
    "Does not validate against any of the Union subtypes",
    "Errors:",
    "- Expected a <class 'NoneType'>",
)


def lightning_cli(args: Sequence[str]):
    """Run a LightningCLI subcommand (``fit -c config.yaml`` ...) with pargs' modules importable by short name.

    A config that does not parse raises :class:`ConfigError` with jsonargparse's message, minus the
    dump of every parsed value, so the one line that matters is visible.
    """
    import argparse
    import warnings

    import lightning as L

    import pargs.datamodules  # noqa: F401  (registers the classes for class_path short names)
    import pargs.lit  # noqa: F401
    from pargs.commands.predict_options import PargsCLI  # checks --ckpt_path and the data first; predict options
    from pargs.lit.run_outputs import RunConfigCallback

    given, args = list(args), list(args)
    if args and args[0] in LIGHTNING_COMMANDS:
        # checkpoints load with weights_only=True unless a config or a later argument says otherwise (Lightning
        # leaves it unset, which it turns into weights_only=False for a checkpoint given by URL)
        args.insert(1, "--weights_only=true")
    with warnings.catch_warnings():
        # we always pass args explicitly, so LightningCLI's warning about sys.argv does not apply
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
        warnings.filterwarnings("ignore", message="skip_none parameter was deprecated")
        # torch's pytree deprecation inside Lightning's own code (lightning/pytorch/utilities/_pytree.py, 2.6.6)
        warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
        try:
            return PargsCLI(
                L.LightningModule,
                L.LightningDataModule,
                subclass_mode_model=True,
                subclass_mode_data=True,
                save_config_callback=RunConfigCallback,  # beside this run's outputs, not in default_root_dir
                save_config_kwargs={"overwrite": True},
                args=list(args),
                auto_configure_optimizers=False,
                parser_kwargs={"exit_on_error": False},
            )
        except argparse.ArgumentError as err:
            raise ConfigError(f"invalid configuration ({' '.join(given)}):\n{_short_parser_error(str(err))}") from None
        except ValueError as err:  # jsonargparse wraps errors raised while building the configured objects
            cause = config_error_in_chain(err)
            if cause is None:
                raise
            raise cause from None


def config_error_in_chain(err: BaseException) -> ConfigError | None:
    """The :class:`ConfigError` an exception was raised from, if any."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, ConfigError):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def _short_parser_error(message: str) -> str:
    """jsonargparse's error without the lines that repeat the whole parsed config."""
    lines = [line for line in message.splitlines() if not line.strip().startswith(_PARSER_NOISE)]
    return "\n".join(line if len(line) <= 300 else line[:297] + "..." for line in lines)


def predict_summary(cli) -> str | None:
    """The closing line of ``pargs predict`` (what its prediction writer holds, and the next command), or None
    without a pargs prediction writer."""
    from pargs.lit.writer import JsonlPredictionWriter

    trainer = getattr(cli, "trainer", None)
    if trainer is None or not trainer.is_global_zero:
        return None
    writer = next((c for c in trainer.callbacks if isinstance(c, JsonlPredictionWriter)), None)
    return writer.summary() if writer is not None else None
