"""Command line: ``pargs`` (and ``lightning``) = LightningCLI + the quickstart, report and data commands.

This module is the table of commands and their usage; each command's ``main`` is imported when it runs
(so ``pargs report --help`` does not wait for torch), the LightningCLI runner is
:mod:`pargs.commands.lightning_runner`.

::

    pargs fit      -c lightning_configs/quickstart/reward_partial.yaml   # LightningCLI subcommands
    pargs predict  -c lightning_configs/quickstart/predict.yaml
    pargs quickstart [--out runs/quickstart]                              # the whole pipeline
    pargs study [--out runs/study] [--seeds 5]                            # every claim tested across seeds
    pargs report RUN_DIR [RUN_DIR ...]                                    # tables and figures
    pargs sweep -c lightning_configs/quickstart/predict.yaml --out runs/sweep   # beta x k grid
    pargs judge RUN_DIR --model JUDGE_LM_DIR                              # pairwise win / tie / lose
    pargs prepare-synthetic --out runs/quickstart/data                    # the embedded task's files
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Callable, Sequence

from pargs.commands import signals
from pargs.commands.lightning_runner import LIGHTNING_COMMANDS, config_error_in_chain, lightning_cli, predict_summary

USAGE = """\
usage: {prog} <command> [options]

Lightning commands (LightningCLI; `{prog} <command> --help` lists every option):
  fit                 train a model:            {prog} fit -c lightning_configs/quickstart/sft.yaml
  validate, test      evaluate a model
  predict             decode prompts:           {prog} predict -c lightning_configs/quickstart/predict.yaml

pargs commands:
  quickstart          the whole pipeline on the embedded synthetic task (no network, no GPU)
  study               the paper's claims tested across seeds, with verdicts: {prog} study [--seeds 5] [--smoke]
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


#: Lightning's advertisements, logged at INFO by every Trainer: nothing a user has to act on
_LIGHTNING_TIPS = "💡 Tip:"


def setup_logging(level: int = logging.INFO) -> None:
    """Send pargs' log records to stderr, once each, and Lightning's without its tips.

    - pargs' loggers print ``[pargs] message`` through their own handler.
    - The root logger gets a stderr handler for WARNING and above (what Python's last resort would print for
      other libraries), so that ``rouge_score``'s absl logging, whose first message calls
      ``logging.basicConfig()``, finds a handler and installs none: its INFO-level root handler printed every
      Lightning INFO line a second time (``INFO:lightning.fabric...``).
    - Lightning prints through its own handler (``INFO: message``) and does not propagate to the root too.
    """
    logger = logging.getLogger("pargs")
    if not logger.handlers:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("[pargs] %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False  # a root handler installed by another library would print it twice
    logger.setLevel(level)
    root = logging.getLogger()
    if not root.handlers:
        fallback = _StderrHandler()
        fallback.setLevel(logging.WARNING)
        root.addHandler(fallback)
    logging.getLogger("lightning").propagate = False
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(name).addFilter(lambda record: not str(record.msg).startswith(_LIGHTNING_TIPS))


#: command -> "module:function" of its ``main(argv) -> int``, imported only when that command runs
COMMANDS: dict[str, str] = {
    "quickstart": "pargs.quickstart:main",
    "study": "pargs.study.command:main",
    "report": "pargs.commands.report:main",
    "sweep": "pargs.sweep:main",
    "judge": "pargs.judging:main",
    "prefix-agreement": "pargs.commands.prefix_agreement:main",
    "prepare-synthetic": "pargs.commands.prepare_synthetic:main",
}


#: commands with safe points, where SIGTERM and SIGINT stop at the next one (:mod:`pargs.commands.signals`); the
#: others are short or write their outputs at the end, and keep the signals' default action (stop at once)
STOPS_SAFELY = (*LIGHTNING_COMMANDS, "quickstart", "study", "sweep")


def command(name: str) -> Callable[[Sequence[str]], int]:
    """The ``main`` of a pargs command, imported now."""
    module, _, function = COMMANDS[name].partition(":")
    return getattr(importlib.import_module(module), function)


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
    with signals.handled(argv[0] in STOPS_SAFELY):
        return _run(prog, argv)


def _run(prog: str, argv: list[str]) -> int:
    """Run one command; a user's error is one line (status 1, 2 for a config that does not parse), a stop
    requested by SIGTERM or SIGINT one line saying what was saved (status 143 or 130)."""
    try:
        if argv[0] in COMMANDS:
            status = command(argv[0])(argv[1:]) or 0
        elif argv[0] not in LIGHTNING_COMMANDS and not argv[0].startswith("-"):
            print(f"{prog}: unknown command {argv[0]!r}\n\n" + USAGE.format(prog=prog), file=sys.stderr)
            return 2
        else:
            cli = lightning_cli(argv)
            if argv[0] == "predict" and (line := predict_summary(cli)):
                print(f"[{prog}] {line}", file=sys.stderr)
            status = 0
    except SystemExit as stop:  # Lightning's SIGTERMException, or pargs' Stopped, at a safe point
        code = signals.stopped(prog, stop)
        if code is None:
            raise
        return code
    except Exception as err:
        cause = config_error_in_chain(err)
        if cause is None:
            raise
        print(f"{prog}: error: {cause}", file=sys.stderr)
        return 2 if str(cause).startswith("invalid configuration") else 1
    code = signals.stopped(prog)  # a signal after the last safe point: everything finished, but a stop was asked for
    return status if code is None else code


if __name__ == "__main__":
    sys.exit(main())
