"""Command line: ``pargs`` (and ``lightning``) = LightningCLI + the quickstart, report and data commands.

::

    pargs fit      -c lightning_configs/quickstart/reward_partial.yaml   # LightningCLI subcommands
    pargs predict  -c lightning_configs/quickstart/predict.yaml
    pargs quickstart [--out runs/quickstart]                              # the whole pipeline
    pargs report RUN_DIR [RUN_DIR ...]                                    # tables and figures
    pargs sweep -c lightning_configs/quickstart/predict.yaml --out runs/sweep   # beta x k grid
    pargs judge RUN_DIR --model JUDGE_LM_DIR                              # pairwise win / tie / lose
    pargs prepare-synthetic --out runs/quickstart/data                    # the embedded task's files
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence

from pargs.errors import ConfigError

LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")

USAGE = """\
usage: {prog} <command> [options]

Lightning commands (LightningCLI; `{prog} <command> --help` lists every option):
  fit                 train a model:            {prog} fit -c lightning_configs/quickstart/sft.yaml
  validate, test      evaluate a model
  predict             decode prompts:           {prog} predict -c lightning_configs/quickstart/predict.yaml

pargs commands:
  quickstart          the whole pipeline on the embedded synthetic task (no network, no GPU)
  report              results tables and figures from prediction files: {prog} report RUN_DIR
  sweep               beta x k grid of a guided method:  {prog} sweep -c PREDICT_CONFIG --out DIR
  judge               win/tie/lose of one method vs the others: {prog} judge RUN_DIR --model JUDGE_LM_DIR
  prefix-agreement    RM accuracy at 25/50/75/100 % of the response: {prog} prefix-agreement --pairs F --rm DIR
  prepare-synthetic   write the synthetic task's data and tokenizer:   {prog} prepare-synthetic --out DIR
"""


class _StderrHandler(logging.StreamHandler):
    """A stream handler that writes to whatever ``sys.stderr`` is at the time of each record."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def setup_logging(level: int = logging.INFO) -> None:
    """Send pargs' log records to stderr (Lightning configures its own loggers)."""
    logger = logging.getLogger("pargs")
    if not logger.handlers:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("[pargs] %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False  # a root handler installed by another library would print it twice
    logger.setLevel(level)


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
    from pargs.lit.preflight import PreflightCLI  # LightningCLI that checks --ckpt_path first

    given, args = list(args), list(args)
    if args and args[0] in LIGHTNING_COMMANDS:
        # checkpoints load with weights_only=True unless a config or a later argument says otherwise (Lightning
        # leaves it unset, which it turns into weights_only=False for a checkpoint given by URL)
        args.insert(1, "--weights_only=true")
    with warnings.catch_warnings():
        # we always pass args explicitly, so LightningCLI's warning about sys.argv does not apply
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
        warnings.filterwarnings("ignore", message="skip_none parameter was deprecated")
        try:
            return PreflightCLI(
                L.LightningModule,
                L.LightningDataModule,
                subclass_mode_model=True,
                subclass_mode_data=True,
                save_config_kwargs={"overwrite": True},
                args=list(args),
                auto_configure_optimizers=False,
                parser_kwargs={"exit_on_error": False},
            )
        except argparse.ArgumentError as err:
            raise ConfigError(f"invalid configuration ({' '.join(given)}):\n{_short_parser_error(str(err))}") from None
        except ValueError as err:  # jsonargparse wraps errors raised while building the configured objects
            cause = _config_error_in_chain(err)
            if cause is None:
                raise
            raise cause from None


def _config_error_in_chain(err: BaseException) -> ConfigError | None:
    """The :class:`ConfigError` an exception was raised from, if any."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, ConfigError):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


_PARSER_NOISE = ("Given value", "Subtypes:", "Does not validate against any of the Union subtypes", "Errors:",
                 "- Expected a <class 'NoneType'>")


def _short_parser_error(message: str) -> str:
    """jsonargparse's error without the lines that repeat the whole parsed config."""
    lines = [line for line in message.splitlines() if not line.strip().startswith(_PARSER_NOISE)]
    return "\n".join(line if len(line) <= 300 else line[:297] + "..." for line in lines)


def _quickstart(args: Sequence[str]) -> int:
    from pargs.quickstart import main as quickstart_main

    return quickstart_main(args)


def _report(args: Sequence[str]) -> int:
    import argparse
    from pathlib import Path

    from pargs.report import build_report, default_report_dir, format_markdown, run_inputs

    parser = argparse.ArgumentParser(prog="pargs report", description="Results tables and figures from predictions.")
    parser.add_argument("inputs", nargs="+", help="run directories (their predictions/ folder) or prediction files")
    parser.add_argument("--out", help="output directory (default: <first run>/report)")
    parser.add_argument("--baseline", default="pargs", help="method the Wilcoxon tests compare against")
    parser.add_argument("--tensorboard",
                        help="also write TensorBoard summaries here (default: <first run>/tensorboard/report)")
    ns = parser.parse_args(list(args))
    out = Path(ns.out) if ns.out else default_report_dir(ns.inputs[0])
    tensorboard = Path(ns.tensorboard) if ns.tensorboard else out.parent / "tensorboard" / "report"
    result = build_report(run_inputs(ns.inputs), out, baseline=ns.baseline, tensorboard_dir=tensorboard)
    print(format_markdown(result))
    print(f"\nwritten to {out} (TensorBoard: {tensorboard})")
    return 0


def _prepare_synthetic(args: Sequence[str]) -> int:
    import argparse
    import json

    from pargs.tasks.synthetic_prepare import SyntheticSizes, prepare_synthetic

    parser = argparse.ArgumentParser(prog="pargs prepare-synthetic", description="Write the synthetic task's files.")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--seed", type=int, default=SyntheticSizes.seed)
    for name in ("n_sft", "n_pairs", "n_pairs_val", "n_test"):
        parser.add_argument("--" + name.replace("_", "-"), dest=name, type=int, default=getattr(SyntheticSizes, name))
    ns = parser.parse_args(list(args))
    out = vars(ns).pop("out")
    summary = prepare_synthetic(out, SyntheticSizes(**vars(ns)))
    print(json.dumps(summary["files"], indent=2))
    return 0


def _prefix_agreement(args: Sequence[str]) -> int:
    import argparse
    from pathlib import Path

    from pargs.metrics.prefix_agreement import agreement_table, prefix_agreement
    from pargs.models.loading import ModelSpec, load_reward_model, load_tokenizer
    from pargs.records import load_preferences

    parser = argparse.ArgumentParser(prog="pargs prefix-agreement",
                                     description="How often reward models prefer the chosen response at "
                                                 "25/50/75/100 %.")
    parser.add_argument("--pairs", required=True, help="preference JSONL (held-out pairs)")
    parser.add_argument("--rm", nargs="+", required=True, help="reward model directories (causal or encoder RMs)")
    parser.add_argument("--out", help="write the Markdown table here too")
    parser.add_argument("--max-length", type=int, default=None, help="truncate pairs to this many tokens")
    ns = parser.parse_args(list(args))
    pairs, _ = load_preferences(ns.pairs)
    results = {}
    for path in ns.rm:
        spec = ModelSpec(path=path)
        tokenizer = load_tokenizer(spec)
        model = load_reward_model(spec, tokenizer).eval()
        results[Path(path).name] = prefix_agreement(model, tokenizer, pairs, max_length=ns.max_length)
    table = agreement_table(results, len(pairs))
    print(table)
    if ns.out:
        Path(ns.out).parent.mkdir(parents=True, exist_ok=True)
        Path(ns.out).write_text(table + "\n")
        print(f"\nwritten to {ns.out}")
    return 0


def _judge(args: Sequence[str]) -> int:
    from pargs.judging import main as judge_main

    return judge_main(list(args))


def _sweep(args: Sequence[str]) -> int:
    from pargs.sweep import main as sweep_main

    return sweep_main(list(args))


COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    "quickstart": _quickstart,
    "report": _report,
    "sweep": _sweep,
    "judge": _judge,
    "prefix-agreement": _prefix_agreement,
    "prepare-synthetic": _prepare_synthetic,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pargs`` and ``lightning`` console scripts."""
    argv = list(sys.argv[1:] if argv is None else argv)
    prog = "pargs"
    if sys.argv and sys.argv[0].endswith("lightning"):
        prog = "lightning"
    setup_logging()
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE.format(prog=prog))
        return 0 if argv else 2
    try:
        if argv[0] in COMMANDS:
            return COMMANDS[argv[0]](argv[1:]) or 0
        if argv[0] not in LIGHTNING_COMMANDS and not argv[0].startswith("-"):
            print(f"{prog}: unknown command {argv[0]!r}\n\n" + USAGE.format(prog=prog), file=sys.stderr)
            return 2
        lightning_cli(argv)
        return 0
    except Exception as err:
        cause = _config_error_in_chain(err)
        if cause is None:
            raise
        print(f"{prog}: error: {cause}", file=sys.stderr)
        return 2 if str(cause).startswith("invalid configuration") else 1


if __name__ == "__main__":
    sys.exit(main())
