"""How a study ran, for its report: wall time per step and seed, the machine's load and cores, and the
environments its steps ran in (pargs/study/ledger.py `environment`). Everything comes from the step records in
the study's evidence (:attr:`pargs.study.evidence.Evidence.records`)."""

from __future__ import annotations

import re
from collections import defaultdict

from pargs.study.evidence import Evidence

#: the order of the wall-time table (the pipeline's); a step family is a step or a grid's points together
TIMING_ORDER = (
    "data",
    "sft",
    "reward_partial",
    "reward_full",
    "dpo",
    "value_rollouts",
    "value",
    "ppo",
    "tune",
    "test",
    "ground_truth",
    "decisions",
    "ablation fits",
    "ablation_decode",
)


def timing_rows(ev: Evidence) -> dict[str, dict[int, float]]:
    """Seconds per step family and seed, as recorded when each step ran, in pipeline order."""
    fam: dict[str, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    for s, recs in ev.records.items():
        for name, rec in recs.items():
            family = re.sub(r"-\d+$", "", name)
            family = "ablation fits" if family.startswith("ablation-") else family
            fam[family][s] += rec["seconds"]
    order = {f: i for i, f in enumerate(TIMING_ORDER)}
    return dict(sorted(fam.items(), key=lambda kv: order.get(kv[0], len(order))))


def load_range(ev: Evidence) -> str:
    """The range of the 1-minute load average recorded before and after each step, or ""."""
    loads = [
        x
        for recs in ev.records.values()
        for r in recs.values()
        for x in (r.get("load_average") or {}).values()
        if x is not None
    ]
    return f"{min(loads):.1f}–{max(loads):.1f}" if loads else ""


def cores(ev: Evidence) -> str:
    """The CPU count of the machine(s) the steps ran on, as their records say."""
    return "/".join(str(c) for c in sorted({r["cpu_count"] for recs in ev.records.values() for r in recs.values()}))


def wall_time_line(ev: Evidence) -> str:
    """One line: the study's wall time in total and per step family, with the machine's load."""
    fam = timing_rows(ev)
    total = sum(v for per in fam.values() for v in per.values())
    load = f", 1-minute load average {load_range(ev)}" if load_range(ev) else ""
    parts = ", ".join(f"{name} {sum(per.values()) / 60:.1f}" for name, per in fam.items())
    ablation = sum(v for name, per in fam.items() if name.startswith("ablation") for v in per.values())
    return (
        f"Measured wall time of the study: {total / 60:.1f} min for {len(ev.records)} seeds on {cores(ev)} CPU "
        f"cores{load}: {(total - ablation) / 60:.1f} min for the pipeline, {ablation / 60:.1f} min for the "
        f"ablation (minutes per step, all seeds: {parts}); report/study.md has it per seed."
    )


def timing_section(ev: Evidence) -> list[str]:
    """The wall-time table: seconds per step family and seed."""
    fam = timing_rows(ev)
    seeds = sorted(ev.records)
    lines = [
        "| step | mean per seed (s) | " + " | ".join(f"seed {s}" for s in seeds) + " | total (s) |",
        "|---|---:|" + "---:|" * (len(seeds) + 1),
    ]
    total = 0.0
    for name, per in fam.items():
        vals = [per.get(s, 0.0) for s in seeds]
        total += sum(vals)
        cells = " | ".join(f"{v:.1f}" for v in vals)
        lines.append(f"| {name} | {sum(vals) / len(vals):.1f} | {cells} | {sum(vals):.1f} |")
    lines += [
        "| **all steps** | | " + " | ".join("" for _ in seeds) + f" | **{total:.1f}** ({total / 60:.1f} min) |",
        "",
        f"Seconds each step took when it ran (steps/<step>.json of each seed; a resumed study adds up the "
        f"times of its runs); the report's own time is in study.json. 1-minute load average while the steps "
        f"ran: {load_range(ev) or 'unknown'}, on {cores(ev)} cores; on a shared machine the times are upper bounds.",
    ]
    return lines


def describe(env: dict | None) -> str:
    """An environment in words: ``pargs 0.1.0 (commit 1a2b3c4d5e6f), torch 2.13.0, transformers 5.24.0, cpu, 2
    threads``."""
    if not env:
        return "not recorded (steps run before pargs recorded environments)"
    if env.get("commit"):
        changes = ", with uncommitted changes" if env.get("uncommitted_changes") else ""
        commit = f"commit {env['commit'][:12]}{changes}"
    else:
        commit = "not a git checkout"
    return (
        f"pargs {env.get('pargs')} ({commit}), torch {env.get('torch')}, transformers {env.get('transformers')}, "
        f"{env.get('device')}, {env.get('threads')} threads"
    )


def environments(ev: Evidence) -> list[tuple[str, list[tuple[int, str]]]]:
    """Each distinct environment in words with the (seed, step) pairs run in it, the most used first."""
    groups: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for s, recs in sorted(ev.records.items()):
        for name, rec in recs.items():
            groups[describe(rec.get("environment"))].append((s, name))
    return sorted(groups.items(), key=lambda kv: -len(kv[1]))


def environment_line(ev: Evidence) -> str:
    """One line for the claims table: the environment of every step, or each environment and its steps."""
    envs = environments(ev)
    if len(envs) == 1:
        return f"Every step ran in one environment: {envs[0][0]}."
    parts = "; ".join(f"{text}: {len(steps)} steps" for text, steps in envs)
    return f"The steps ran in {len(envs)} environments (a study resumed with --reuse; study.md lists them): {parts}."


def environment_section(ev: Evidence) -> list[str]:
    """Every environment and the steps run in it (pargs/study/ledger.py)."""
    lines = ["| environment | steps run in it |", "|---|---|"]
    envs = environments(ev)
    if len(envs) == 1:
        lines.append(f"| {envs[0][0]} | every step of seeds {sorted({s for s, _ in envs[0][1]})} |")
    for text, steps in envs if len(envs) > 1 else []:
        by_seed: dict[int, list[str]] = defaultdict(list)
        for s, name in steps:
            by_seed[s].append(name)
        where = "; ".join(f"seed {s}: {', '.join(names)}" for s, names in by_seed.items())
        lines.append(f"| {text} | {where} |")
    return [
        *lines,
        "",
        "A study refuses to resume a step recorded in another environment (pargs version and git commit, torch "
        "and transformers versions, device, thread count) unless it runs with --reuse.",
    ]
