"""``python -m tests.signal_in_step STEP ARGS...``: ``pargs ARGS...`` (the quickstart or the study), in which the
step whose config is ``configs/STEP.yaml`` gets a SIGTERM during its first training step.

The step's config is written by the command itself; this adds :class:`tests.helpers.SignalAt` to its callbacks
just before it runs, so a test can stop a command at a known point inside one of its steps without a clock.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

import pargs.quickstart
import pargs.study.pipeline
from pargs.cli import main


def _signalled(step: str, run_config):
    def run(command: str, config: Path, *options: str):
        if config.stem == step:
            cfg = yaml.safe_load(config.read_text())
            signal_at = {"class_path": "tests.helpers.SignalAt", "init_args": {"hook": "on_train_batch_start"}}
            cfg["trainer"]["callbacks"] = [*cfg["trainer"].get("callbacks", []), signal_at]
            config.write_text(yaml.safe_dump(cfg, sort_keys=False))
        return run_config(command, config, *options)

    return run


if __name__ == "__main__":
    target, *argv = sys.argv[1:]
    for module in (pargs.quickstart, pargs.study.pipeline):
        module.run_config = _signalled(target, module.run_config)
    sys.exit(main(argv))
