"""The study report's CSV files: per method and seed, per claim and seed, every verdict, Theorem 1's rows, the
tuning grids, the ablation, the decision-level numbers per seed, scorer and metric, and the wall time. Formatting
only: the numbers come from :class:`pargs.study.evidence.Findings`."""

from __future__ import annotations

import csv
from pathlib import Path

from pargs.study import decisions
from pargs.study.evidence import Findings, method_order, seed_means
from pargs.study.grids import GUIDED
from pargs.study.report_runs import timing_rows


def write_csv(path: Path, header: list[str], rows) -> str:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return str(path)


CLAIMS_HEADER = [
    "claim",
    "view",
    "kind",
    "margin",
    "primary",
    "seed",
    "a",
    "b",
    "diff",
    "prompts",
    "zero_differences",
    "p_a_greater",
    "p_a_less",
    "across_p_a_greater",
    "across_p_a_less",
    "across_p_a_greater_adjusted",
    "across_p_a_less_adjusted",
    "verdict",
    "verdict_alone",
]
VERDICTS_HEADER = [
    "claim",
    "primary",
    "sequence_position",
    "across_p_for",
    "across_p_against",
    "adjusted_p_for",
    "adjusted_p_against",
    "seeds_for",
    "seeds_against",
    "zero_differences",
    "verdict",
    "verdict_alone",
    "seeds_needed",
    "seeds_needed_direction",
    "seeds_needed_level",
]


def _claims_rows(fd: Findings):
    for c in fd.claims:
        d = fd.verdicts[c.claim.name]
        for x in c.claim.seeds:
            yield (
                c.claim.name, c.view, c.claim.kind, c.claim.margin, d.primary, x.seed, x.a, x.b, x.diff,
                x.n_prompts, x.zeros, x.p_for, x.p_against, d.across_for, d.across_against, d.adjusted_for,
                d.adjusted_against, d.verdict, d.alone,
            )  # fmt: skip


def _verdict_rows(fd: Findings):
    for d in fd.verdicts.values():
        n = d.needed
        yield (
            d.name, d.primary, d.position, d.across_for, d.across_against, d.adjusted_for, d.adjusted_against,
            d.seeds_for, d.seeds_against, d.zeros, d.verdict, d.alone,
            "" if n is None or n.seeds is None else n.seeds, "" if n is None else n.direction,
            "" if n is None else n.level,
        )  # fmt: skip


THEOREM1_HEADER = [
    "reference",
    "slice",
    "fraction",
    "seed",
    "partial_only",
    "full_only",
    "n_items",
    "p_partial_greater",
    "partial_minus_full",
    "across_p_partial_greater",
    "across_p_partial_less",
    "pooled_p_partial_greater",
    "pooled_p_partial_less",
    "verdict",
]


def _theorem1_rows(fd: Findings):
    for t in fd.theorem1.tests:
        for s, x, d in zip(fd.ev.seeds, t.per_seed_for, t.per_seed_diff):
            yield (
                t.against, t.slice, t.fraction, s, x.a_only, x.b_only, x.n_items, x.p_value, d, t.across_for,
                t.across_against, t.pooled_for.p_value, t.pooled_against.p_value, fd.verdicts[t.claim.name].verdict,
            )  # fmt: skip


def _tuning_rows(fd: Findings):
    ev = fd.ev
    for s in ev.seeds:
        for g in GUIDED:
            for b, v in ev.tuning[s]["guided"][g]["values"].items():
                yield (s, g, f"beta={b}", v, float(b) == ev.tuning[s]["guided"][g]["chosen"])
        for family in ("dpo", "ppo"):
            for p in ev.tuning[s][family]["grid"]:
                yield (s, family, p["name"], p["reward"], p["name"] == ev.tuning[s][family]["chosen_name"])
        yield (s, "initial policy", "sft-top-k", ev.tuning[s]["initial_policy"]["reward"], "")


def write_csvs(fd: Findings, out: Path) -> dict[str, str]:
    """Every CSV of the report into ``out``; returns their paths."""
    ev = fd.ev
    paths = {}
    paths["methods_csv"] = write_csv(
        out / "methods.csv",
        ["method", "seed", "reward", "prompts", "samples", "ms_per_token"],
        [
            (m, s, v, ev.prompts[m], ev.samples[m], ev.timing[m][s])
            for m in method_order(ev)
            for s, v in seed_means(ev, m).items()
        ],
    )
    paths["claims_csv"] = write_csv(out / "claims.csv", CLAIMS_HEADER, _claims_rows(fd))
    paths["verdicts_csv"] = write_csv(out / "verdicts.csv", VERDICTS_HEADER, _verdict_rows(fd))
    paths["theorem1_csv"] = write_csv(out / "theorem1.csv", THEOREM1_HEADER, _theorem1_rows(fd))
    header = ["seed", "method", "setting", "validation_reward", "chosen"]
    paths["tuning_csv"] = write_csv(out / "tuning.csv", header, _tuning_rows(fd))
    if ev.ablation:
        paths["ablation_csv"] = write_csv(
            out / "ablation.csv",
            ["method", "seed", "reward"],
            [(m, s, v) for m, per in ev.ablation.items() for s, v in per.items()],
        )
    if fd.decisions:
        paths["decisions_csv"] = write_csv(
            out / "decisions.csv",
            ["seed", "scorer", "metric", "mean_over_states", "states"],
            [
                (s, scorer, m, summary.metrics[scorer][m], summary.counted[m])
                for s, summary in sorted(fd.decisions.items())
                for scorer in decisions.SCORERS
                for m in decisions.METRICS
            ],
        )
    fam = timing_rows(ev)
    paths["timing_csv"] = write_csv(
        out / "timing.csv", ["step", "seed", "seconds"], [(f, s, v) for f, per in fam.items() for s, v in per.items()]
    )
    return paths
