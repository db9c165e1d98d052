"""``pargs quickstart``: the whole pipeline on the embedded synthetic task, on a laptop, in minutes.

1. write the synthetic task (SFT corpus, preference pairs, held-out prompts, tokenizer);
2. ``fit`` the reference LM (SFT);
3. ``fit`` a partial-sequence RM and a full-sequence RM on the same pairs with the same budget;
4. ``predict`` every held-out prompt with every method, scored by the task's hidden oracle;
5. ``report``: the results table and the reward models' accuracy on prefixes of held-out pairs
   (under ``<run>/report``), and TensorBoard logs.

With ``--all`` (the extended mode) the baselines of ``lightning_configs/baselines/`` are trained after
the reward models -- DPO, CD-FUDGE (reference rollouts scored by the full RM, then the prefix value
model) and PPO -- and step 4 decodes with every method of the paper (``predict_all.yaml``): top-k,
Best-of-N, ARGS, CD-FUDGE, DPO, PPO, PARGS-G and PARGS in one table.

Each step runs the shipped config under ``lightning_configs/quickstart/`` (or ``baselines/``) through the same
LightningCLI that ``pargs fit`` / ``pargs predict`` use; the configs are copied into
``<run>/configs`` with their paths pointed at the run directory, so any step can be re-run by hand.

Running the quickstart again into the same directory runs every step again: its fit steps run with
``--overwrite=true`` (the previous run's checkpoints and models are replaced) and its predict steps with
``--on_change=restart`` (lines written by the previous run's models, another seed or size, are decoded
again; lines the same models would write are kept). These are runtime choices of the quickstart, not written
into ``<run>/configs``: a copied config re-run by hand refuses, naming what changed.
SIGTERM or SIGINT stops it at the step's next safe point (:mod:`pargs.commands.signals`).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from pargs.commands import signals
from pargs.commands.prefix_agreement import agreement_of_models
from pargs.commands.steps import DEFAULT_RUN_DIR, quiet_steps, run_config, step_config, write_config

if TYPE_CHECKING:
    from pargs.tasks.synthetic_prepare import SyntheticSizes

log = logging.getLogger(__name__)

STEPS = ("sft", "reward_partial", "reward_full", "predict")
#: ``--all``: the baselines after the reward models, then every method in one prediction run
EXTENDED_STEPS = ("sft", "reward_partial", "reward_full", "dpo", "value_rollouts", "value", "ppo", "predict_all")
#: steps whose config lives in ``lightning_configs/baselines/`` (the others: ``quickstart/``)
BASELINE_STEPS = ("dpo", "value_rollouts", "value", "ppo")
#: steps that run ``predict`` (the others run ``fit``)
PREDICT_STEPS = ("predict", "predict_all", "value_rollouts")
#: the quickstart's runtime choices (module docstring): a re-run replaces the previous run's outputs
RERUN_OPTIONS = {"fit": ("--overwrite=true",), "predict": ("--on_change=restart",)}


def _config(name: str, run_dir: Path, seed: int, overrides: dict) -> Path:
    """Copy a shipped config into ``run_dir/configs`` with its paths and seed pointed at this run."""
    source = f"{'baselines' if name in BASELINE_STEPS else 'quickstart'}/{name}"
    command = "predict" if name in PREDICT_STEPS else "fit"
    cfg = step_config(source, run_dir, seed, overrides)
    return write_config(cfg, run_dir / "configs" / f"{name}.yaml", command, source, "pargs quickstart")


def run_quickstart(
    run_dir: str | Path = DEFAULT_RUN_DIR,
    seed: int = 0,
    sizes: SyntheticSizes | None = None,
    epochs: dict[str, int] | None = None,
    limit_prompts: int | None = None,
    extended: bool = False,
    overrides: dict[str, dict] | None = None,
) -> dict:
    """Run every step; return ``{"run_dir", "seconds": {step: s}, "report": ...}``.

    Args:
        run_dir: where everything goes (data, models, TensorBoard logs, predictions, report).
        seed: seed of the data, the training runs and the decoding.
        sizes: synthetic task sizes (default: the quickstart's).
        epochs: per-step epoch overrides (``{"sft": 1, "reward_partial": 1, ...}``), for smoke tests.
        limit_prompts: decode only the first N held-out prompts.
        extended: also train DPO, CD-FUDGE and PPO and decode with every method (``--all``).
        overrides: per-step config overrides, ``{step: {"dotted.key": value}}``, for smoke tests.
    """
    # imported here, not above: `pargs quickstart --help` should not wait for torch
    from pargs.report import build_report, format_markdown
    from pargs.tasks.synthetic_prepare import SyntheticSizes, prepare_synthetic

    run_dir = Path(run_dir)
    sizes = sizes or SyntheticSizes(seed=seed)
    epochs = epochs or {}
    seconds: dict[str, float] = {}

    start = time.perf_counter()
    prepare_synthetic(run_dir / "data", sizes)
    seconds["prepare"] = time.perf_counter() - start
    for step in EXTENDED_STEPS if extended else STEPS:
        step_overrides = dict((overrides or {}).get(step, {}))
        if step in epochs:
            step_overrides["trainer.max_epochs"] = epochs[step]
        if step in ("predict", "predict_all") and limit_prompts:
            step_overrides["data.init_args.limit"] = limit_prompts
        again = f"quickstart step {step}; `pargs quickstart` again runs every step again"
        with signals.unit(f"before {again}", f"in {again}"):
            config = _config(step, run_dir, seed, step_overrides)
            log.info("quickstart step %s", step)
            command = "predict" if step in PREDICT_STEPS else "fit"
            seconds[step] = run_config(command, config, *RERUN_OPTIONS[command])

    signals.check("before the quickstart's report: `pargs quickstart` again runs every step again")
    start = time.perf_counter()
    report = build_report(
        [run_dir / "predictions"],
        run_dir / "report",
        baseline="pargs",
        tensorboard_dir=run_dir / "tensorboard" / "report",
    )
    with quiet_steps():
        agreement = _prefix_agreement(run_dir)
    seconds["report"] = time.perf_counter() - start
    summary = {
        "run_dir": str(run_dir),
        "seed": seed,
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
        "total_seconds": round(sum(seconds.values()), 1),
    }
    (run_dir / "quickstart.json").write_text(json.dumps(summary, indent=2) + "\n")
    summary["table"] = format_markdown(report)
    summary["prefix_agreement"] = agreement
    summary["report"] = report
    return summary


def _prefix_agreement(run_dir: Path) -> str:
    """Table 12 view for the two reward models on the held-out pairs, saved under ``report/``."""
    models = [run_dir / "models" / name for name in ("rm_partial", "rm_full")]
    table = agreement_of_models(run_dir / "data" / "pairs_val.jsonl", models)
    (run_dir / "report" / "prefix_agreement.md").write_text(table + "\n")
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="pargs quickstart",
        description="Run the whole pipeline (data, SFT, partial and full RMs, decoding, report) on the embedded "
        "synthetic task. No network and no GPU needed.",
    )
    parser.add_argument("--out", default=DEFAULT_RUN_DIR, help="run directory (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of data, training and decoding")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a reduced run for checking an installation (small data, 1 epoch, 8 prompts)",
    )
    parser.add_argument(
        "--all",
        action="store_true",
        dest="extended",
        help="extended mode: also train DPO, CD-FUDGE (rollouts + value model) and PPO, and "
        "decode with every method of the paper in one table",
    )
    ns = parser.parse_args(argv)
    kwargs = {}
    if ns.smoke:
        from pargs.tasks.synthetic_prepare import SyntheticSizes

        kwargs = {
            "sizes": SyntheticSizes(seed=ns.seed, n_sft=400, n_sft_val=40, n_pairs=200, n_pairs_val=40, n_test=8),
            "epochs": {"sft": 1, "reward_partial": 1, "reward_full": 1, "dpo": 1, "value": 1, "ppo": 1},
            "limit_prompts": 8,
            "overrides": {"value_rollouts": {"data.init_args.limit": 32}, "ppo": {"trainer.limit_train_batches": 2}},
        }
    summary = run_quickstart(ns.out, ns.seed, extended=ns.extended, **kwargs)
    print("\n" + summary["table"])
    print("\nReward models on prefixes of the held-out pairs (the paper's Table 12 view):\n")
    print(summary["prefix_agreement"])
    print(
        f"\nrun directory: {summary['run_dir']}  (total {summary['total_seconds']} s: "
        + ", ".join(f"{k} {v} s" for k, v in summary["seconds"].items())
        + ")"
    )
    print(f"report:        {Path(summary['run_dir']) / 'report'}")
    print(f"tensorboard:   tensorboard --logdir {Path(summary['run_dir']) / 'tensorboard'}")
    return 0
