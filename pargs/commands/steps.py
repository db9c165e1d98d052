"""A pipeline step: a shipped config copied into a run directory with its paths and seed pointed at the run,
changed by overrides, and run through LightningCLI.

``pargs quickstart`` (:mod:`pargs.quickstart`) and ``pargs study`` (:mod:`pargs.study`) build their steps here,
so a step of either can be re-run by hand with ``pargs fit|predict -c <run>/configs/<step>.yaml``.
"""

from __future__ import annotations

import logging
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import yaml

from pargs.commands.lightning_runner import lightning_cli
from pargs.errors import ConfigError

log = logging.getLogger(__name__)

CONFIG_ROOT = Path(__file__).resolve().parents[2] / "lightning_configs"
DEFAULT_RUN_DIR = "runs/quickstart"  # the path the shipped quickstart and baseline configs are written against


def shipped_config(source: str) -> Path:
    """The shipped config ``lightning_configs/<source>.yaml`` (e.g. ``baselines/dpo``), or a ConfigError."""
    path = CONFIG_ROOT / f"{source}.yaml"
    if not path.is_file():
        raise ConfigError(
            f"{path} not found: the quickstart and the study run the configs of a source checkout; install with "
            "`pip install -e .` from the repository"
        )
    return path


def set_dotted(cfg: dict, dotted: str, value) -> None:
    """Set ``cfg[a][b][c] = value`` for ``dotted = "a.b.c"``; a number indexes a list (``callbacks.0``)."""
    node = cfg
    *parents, leaf = dotted.split(".")
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if isinstance(node, list):
        node[int(leaf)] = value
    else:
        node[leaf] = value


def step_config(source: str, run_dir: Path, seed: int, overrides: dict) -> dict:
    """The shipped config ``source`` with ``runs/quickstart`` replaced by ``run_dir``, the seed and the overrides."""
    text = shipped_config(source).read_text().replace(DEFAULT_RUN_DIR, str(run_dir))
    cfg = yaml.safe_load(text)
    cfg["seed_everything"] = seed
    for dotted, value in overrides.items():
        set_dotted(cfg, dotted, value)
    return cfg


def write_config(cfg: dict, out: Path, command: str, source: str, writer: str) -> Path:
    """Write ``cfg`` to ``out`` under a header saying how to run it and where it came from."""
    out.parent.mkdir(parents=True, exist_ok=True)
    header = f"# pargs {command} -c {out}\n# written by {writer} from lightning_configs/{source}.yaml\n"
    out.write_text(header + yaml.safe_dump(cfg, sort_keys=False))
    return out


@contextmanager
def quiet_steps():
    """Inside a pipeline, the lines every step repeats bury the step lines pargs prints: Lightning's INFO lines
    (devices found, seed set, why a fit stopped) and transformers' progress bars of loading and saving local
    models are held back; warnings still show. The warning that a step has fewer batches than
    ``log_every_n_steps`` is expected on the reduced sizes (``--smoke``): TensorBoard gets the epoch's values.
    So are, with the shipped configs: frozen reference models in eval mode at the start of training (DPO, PPO),
    peft's note that GPT-2's ``Conv1D`` layers set ``fan_in_fan_out`` (it does so itself), and transformers'
    deprecation of ``is_gradient_checkpointing``, which its own code calls."""
    import lightning  # noqa: F401  (its import sets its loggers' levels: set them after it)
    from transformers.utils import logging as hf_logging

    loggers = [logging.getLogger(name) for name in ("lightning", "lightning.pytorch", "lightning.fabric")]
    levels = [logger.level for logger in loggers]
    bars = hf_logging.is_progress_bar_enabled()
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            for expected in (
                r"The number of training batches \(\d+\) is smaller than",
                r"Found \d+ module\(s\) in eval mode at the start of training",
                r"fan_in_fan_out is set to False but the target module is `Conv1D`",
                r"`is_gradient_checkpointing` is deprecated",
            ):
                warnings.filterwarnings("ignore", message=expected)
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
        if bars:
            hf_logging.enable_progress_bar()


def run_config(command: str, config: Path, *options: str) -> float:
    """``pargs <command> -c <config> [options]`` in this process, its repeated lines held back
    (:func:`quiet_steps`); the wall time in seconds. ``options`` are runtime choices (``--overwrite=true``,
    ``--on_change=restart``) that the written config does not carry, so a user who re-runs it by hand gets the
    safe defaults."""
    log.info("pargs %s -c %s%s", command, config, "".join(f" {o}" for o in options))
    start = time.perf_counter()
    with quiet_steps():
        lightning_cli([command, "-c", str(config), *options])
    return time.perf_counter() - start
