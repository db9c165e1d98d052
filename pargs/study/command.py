"""``pargs study [--out runs/study] [--seeds 5] [--smoke] [--reuse] [--no-ablation] [--redo STEP ...]``,
``pargs study --recompute DIR``

Runs the embedded pipeline over S seeds (each redraws the synthetic data, the model initialisations and
the decoding noise): data with validation prompts, SFT, partial and full RMs, DPO (grid), CD-FUDGE
rollouts and value model, PPO (grid), tuning decodes on the validation prompts, every decoding method
on the test prompts scored by the oracle, the Monte Carlo ground truth of prefix preferences with both
RMs' agreement, and the data-size ablation; then writes ``<out>/report`` (:mod:`pargs.study.report`).

The report is computed from compact evidence files the study writes first (``<out>/report/evidence``,
:mod:`pargs.study.evidence_files`); ``--recompute DIR`` rebuilds every table and verdict from them alone (no
models, no predictions), into the folder that holds them.

Resume (:mod:`pargs.study.ledger`): each completed step of a seed leaves a record of its config, its
inputs' fingerprints and the environment it ran in (pargs version and git commit, torch and transformers
versions, device, thread count). Running the same command again skips every step whose record matches what
would run now, runs the steps without a record (an interrupted step starts over), and refuses a step whose
record differs, naming the seed, the step and the fields; a step recorded in another environment is refused
too, so that one study does not mix them. ``--reuse`` keeps the recorded steps even from another environment
(the report lists each environment and its steps) and trains nothing: every training step must already be
recorded (decoding, evaluation and the report may run). ``--redo STEP`` discards that step's records (a
family such as ``dpo`` names all its grid points), and those of every step reading it, in every seed, and
runs them again.

SIGTERM or SIGINT stops the study at the step's next safe point (:mod:`pargs.commands.signals`): the
step in progress is not recorded, so the same command runs it again from its start. One study at a time
per ``--out``: a second one is refused, naming the holder of ``<out>/study.lock``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_OUT = "runs/study"


def run_study(
    out: str | Path = DEFAULT_OUT,
    seeds: int = 5,
    plan=None,
    ablation: bool = True,
    ablation_seeds: int | None = None,
    reuse: bool = False,
    redo: list[str] | None = None,
    stream=None,
) -> dict:
    """Run (or continue) a study; return the summary also written to ``<out>/study.json``.

    The study holds ``<out>/study.lock`` (:mod:`pargs.lit.run_lock`) from before it reads or removes anything
    in ``out`` to its end: a second study on the same ``out`` is refused, naming the holder.
    """
    from pargs.lit.run_lock import STUDY, acquire

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with acquire(out, "give another --out for a separate study", STUDY):
        return _run_study(out, seeds, plan, ablation, ablation_seeds, reuse, redo, stream)


def _run_study(out: Path, seeds: int, plan, ablation: bool, ablation_seeds, reuse: bool, redo, stream) -> dict:
    """:func:`run_study` once ``out`` is locked."""
    from pargs.commands import signals
    from pargs.study.pipeline import SeedRun, dependents, execute, match_steps
    from pargs.study.plan import FULL
    from pargs.study.progress import Progress
    from pargs.study.report import write_report

    plan = plan or FULL
    runs = [SeedRun(out, s, plan) for s in range(seeds)]
    n_ablation = 0 if not ablation else seeds if ablation_seeds is None else min(ablation_seeds, seeds)
    if redo:
        for run in runs:
            steps = run.steps() + run.ablation_steps()
            for name in dependents(steps, match_steps(steps, redo)):
                if run.ledger.remove(name):
                    log.info("--redo: seed %d: %s will run again", run.seed, name)
    total = sum(len(r.steps()) for r in runs) + sum(len(r.ablation_steps()) for r in runs[:n_ablation])
    progress = Progress(total, stream)
    start = time.perf_counter()
    steps: dict[int, dict] = {}
    try:
        for run in runs:
            steps[run.seed] = execute(run, run.steps(), reuse, progress)
        for run in runs[:n_ablation]:
            steps[run.seed].update(execute(run, run.ablation_steps(), reuse, progress))
    finally:
        progress.close()
    pipeline_seconds = time.perf_counter() - start
    signals.check("after every step (each recorded as done), before the report: the same command writes it")
    t = time.perf_counter()
    report = write_report(out, [r.seed for r in runs], [r.seed for r in runs[:n_ablation]], plan)
    report_seconds = time.perf_counter() - t
    ran = sum(v["seconds"] for per in steps.values() for v in per.values() if v["status"] == "ran")
    recorded = sum(v["seconds"] for per in steps.values() for v in per.values())
    summary = {
        "out": str(out),
        "seeds": [r.seed for r in runs],
        "ablation_seeds": [r.seed for r in runs[:n_ablation]],
        "plan": plan.as_dict(),
        "steps": {str(s): v for s, v in steps.items()},
        "seconds": {
            "this_run": round(pipeline_seconds + report_seconds, 1),
            "steps_run_now": round(ran, 1),
            "all_steps_recorded": round(recorded, 1),
            "report": round(report_seconds, 1),
        },
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "cpu_count": os.cpu_count(),
        "report": report["paths"],
    }
    (out / "study.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
    summary["claims_table"] = report["claims_table"]
    return summary


def _recompute(path: str) -> int:
    """``--recompute DIR``: the report rebuilt from its evidence; a study's --out is locked while it is written."""
    from pargs.lit.run_lock import STUDY, acquire
    from pargs.study.report import recompute, report_folder

    folder = report_folder(Path(path))
    if folder != Path(path):  # a study's --out: keep a running study out while its report is rewritten
        with acquire(Path(path), "recompute a copy of its report folder", STUDY):
            report = recompute(folder)
    else:
        report = recompute(folder)
    print("\n" + report["claims_table"])
    print(f"\nreport recomputed from {folder / 'evidence'}: {report['paths']['markdown']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``pargs study``."""
    parser = argparse.ArgumentParser(
        prog="pargs study",
        description="Test every claim of the paper across seeds on the embedded synthetic task: the whole pipeline "
        "per seed (fair baselines, tuned beta, DPO/PPO grids, Monte Carlo ground truth, data-size ablation), then "
        "one report with a verdict per claim. Resumes per seed and step.",
        epilog="Resume: each completed step of a seed leaves <out>/seed-<s>/steps/<step>.json (its config, its "
        "inputs' fingerprints and its environment). Running again skips a step whose record matches what would run "
        "now, runs a step without a record from its start (an interrupted one too), and refuses a step whose record "
        "differs, naming the fields: give --redo STEP to run it (and the steps reading it) again, --reuse to keep "
        "steps recorded in another environment, or another --out.",
    )
    parser.add_argument("--out", default=DEFAULT_OUT, help="study directory (default: %(default)s)")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds, 0..S-1 (default 5; --smoke: 2)")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a tiny study for tests and installation checks (tiny data, 1 epoch, few prompts, small "
        "m, one-point DPO/PPO grids)",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep every recorded step, even one recorded in another environment (code, library versions, device, "
        "threads; the report lists each), and train nothing: every training step must already be recorded; "
        "decoding, evaluation and the report may run",
    )
    parser.add_argument("--no-ablation", action="store_true", help="skip the data-size ablation")
    parser.add_argument(
        "--ablation-seeds",
        type=int,
        default=None,
        help="run the ablation on the first N seeds only (default: every seed)",
    )
    parser.add_argument(
        "--redo",
        nargs="+",
        metavar="STEP",
        default=None,
        help="discard these steps (a family such as dpo names every grid point) and every step "
        "reading them, in every seed, and run them again",
    )
    parser.add_argument(
        "--recompute",
        metavar="DIR",
        default=None,
        help="rebuild every table and verdict of a study's report from its evidence files alone (DIR: the study's "
        "--out or its report folder, e.g. benchmarks/results/study), written into the folder that holds them; "
        "runs nothing else",
    )
    return parser


def _print_summary(summary: dict) -> None:
    print("\n" + summary["claims_table"])
    print("\nWall time per step (s), as recorded when each step ran:")
    for seed, steps in summary["steps"].items():
        times = ", ".join(
            f"{k} {v['seconds']:.1f}" + ("" if v["status"] == "ran" else " (before)") for k, v in steps.items()
        )
        print(f"  seed {seed}: {times}")
    sec = summary["seconds"]
    print(
        f"\nstudy directory: {summary['out']}  (this run {sec['this_run']} s; all steps as recorded "
        f"{sec['all_steps_recorded']} s; report {sec['report']} s)"
    )
    print(f"report:          {summary['report']['markdown']}")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    ns = parser.parse_args(argv)
    if ns.recompute is not None:
        others = [f for f, v in (("--seeds", ns.seeds is not None), ("--smoke", ns.smoke), ("--reuse", ns.reuse),
                  ("--no-ablation", ns.no_ablation), ("--ablation-seeds", ns.ablation_seeds is not None),
                  ("--redo", ns.redo), ("--out", ns.out != DEFAULT_OUT)) if v]  # fmt: skip
        if others:
            parser.error(f"--recompute runs nothing else: leave out {', '.join(others)}")
        return _recompute(ns.recompute)
    from pargs.study.plan import FULL, SMOKE

    seeds = ns.seeds if ns.seeds is not None else 2 if ns.smoke else 5
    summary = run_study(
        ns.out,
        seeds,
        SMOKE if ns.smoke else FULL,
        ablation=not ns.no_ablation,
        ablation_seeds=ns.ablation_seeds,
        reuse=ns.reuse,
        redo=ns.redo,
    )
    _print_summary(summary)
    return 0
