"""The study report's figures, each as PNG and PDF (pargs/commands/figures.py `save`) with mean ± SE across seeds
and a note on what is left out: test reward per method, the RMs' agreement with the ground truth per fraction, the
data-size ablation, and the decision-level ranking against decoding reward. Drawing only: the numbers come from
:class:`pargs.study.evidence.Findings`."""

from __future__ import annotations

import math
from pathlib import Path

from pargs.metrics.reward_stats import mean_se
from pargs.study import decisions
from pargs.study import numbers as fmt
from pargs.study.evidence import Findings, agreement_rate, label, method_order, seed_means
from pargs.study.grids import FIXED_BETA
from pargs.tasks.synthetic import ORACLE_NAME


def _rewards(fd: Findings, out: Path) -> dict[str, str]:
    from matplotlib.figure import Figure

    from pargs.commands.figures import add_note, save

    ev = fd.ev
    rows = method_order(ev)
    fig = Figure(figsize=(7, 0.38 * len(rows) + 2.2))
    ax = fig.subplots()
    for i, m in enumerate(rows):
        vals = list(seed_means(ev, m).values())
        mean, se = mean_se(vals)
        ax.scatter(vals, [i] * len(vals), s=12, color="tab:gray", alpha=0.8, zorder=1)
        ax.errorbar(mean, i, xerr=0 if math.isnan(se) else se, fmt="o", color="tab:blue", capsize=3, zorder=2)
    ax.set_yticks(range(len(rows)), [label(m) for m in rows])
    ax.invert_yaxis()
    ax.set_xlabel(f"{ORACLE_NAME} (mean over test prompts)")
    ax.set_title(f"Test reward per method, {len(ev.seeds)} seeds")
    add_note(fig, ["Blue: mean ± 1 SE across seeds; grey: each seed's value. Every test row is shown."])
    return save(fig, out, "rewards")


def _agreement(fd: Findings, out: Path) -> dict[str, str]:
    from matplotlib.figure import Figure

    from pargs.commands.figures import add_note, save

    ev = fd.ev
    truth = [t for t in fd.theorem1.tests if t.against == "truth" and t.slice == "all"]
    fig = Figure(figsize=(5.5, 4.2))
    ax = fig.subplots()
    for rm, color, name in (("rm_partial", "tab:green", "partial RM"), ("rm_full", "tab:orange", "full RM")):
        xs, ys, es = [], [], []
        for t in truth:
            rates = [
                agreement_rate([o for o in ev.outcomes[s][rm] if o.fraction == t.fraction], "truth")[0]
                for s in ev.seeds
            ]
            mean, se = mean_se(rates)
            xs.append(100 * t.fraction)
            ys.append(mean)
            es.append(0 if math.isnan(se) else se)
        ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, color=color, label=name)
    ax.set_xlabel("prefix length (% of the response)")
    ax.set_ylabel("agreement with the ground truth")
    ax.set_title("Which prefix is better? RMs vs Monte Carlo ground truth")
    ax.legend()
    add_note(
        fig,
        [
            "Mean ± 1 SE across seeds. Ground truth: the expected " + ORACLE_NAME + " of the prefix when "
            "pi_ref completes it.",
            'Not shown: the label view and the "but"-contrast slice (tables in study.md).',
        ],
    )
    return save(fig, out, "prefix_agreement")


def _ablation(fd: Findings, out: Path) -> dict[str, str]:
    from matplotlib.figure import Figure

    from pargs.commands.figures import add_note, left_out, save

    ev, plan = fd.ev, fd.ev.plan
    fig = Figure(figsize=(5.5, 4.2))
    ax = fig.subplots()
    xs, ys, es = [], [], []
    for r in plan.ablation_ratios:
        vals = list(ev.ablation.get(f"pargs-rows-{r:g}x", {}).values())
        if not vals:
            continue
        mean, se = mean_se(vals)
        xs.append(r)
        ys.append(mean)
        es.append(0 if math.isnan(se) else se)
        ax.scatter([r] * len(vals), vals, s=12, color="tab:gray", alpha=0.8, zorder=1)
    ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, color="tab:blue", label="materialised-prefix RM", zorder=2)
    dense = list(ev.ablation.get("pargs-dense", {}).values())
    if dense:
        mean, se = mean_se(dense)
        ax.axhline(mean, color="tab:green", linestyle="--", label="dense partial RM (every prefix)")
        if not math.isnan(se):
            ax.axhspan(mean - se, mean + se, color="tab:green", alpha=0.15)
    ax.set_xlabel("prefix_rows ratio (rows per epoch / pairs)")
    ax.set_ylabel(f"{ORACLE_NAME} of PARGS")
    ax.set_title("Data-size ablation (Table 15 view)")
    ax.legend(fontsize=8)
    add_note(
        fig,
        [
            f"Mean ± 1 SE across seeds {ev.ablation_seeds} (band: the dense RM's SE); grey: each seed. PARGS "
            f"at β = {FIXED_BETA:g} only, on the first {plan.ablation_prompts or 'all'} test prompts.",
            left_out(["every other method"], "the ablation changes PARGS's RM only"),
        ],
    )
    return save(fig, out, "ablation")


def _decisions(fd: Findings, out: Path) -> dict[str, str]:
    """Mean τ-b per scorer against the test reward of the method it guides, one point per seed and method."""
    from matplotlib.figure import Figure

    from pargs.commands.figures import add_note, save

    link = fd.ranking
    fig = Figure(figsize=(6, 4.6))
    ax = fig.subplots()
    for s in sorted({p[0] for p in link.points}):
        own = sorted((p for p in link.points if p[0] == s), key=lambda p: p[2])
        ax.plot([p[2] for p in own], [p[3] for p in own], color="lightgray", linewidth=0.8, zorder=1)
    colors = {"partial": "tab:green", "full": "tab:orange", "value": "tab:purple", "logp": "tab:gray"}
    for scorer, method in decisions.SCORERS.items():
        own = [p for p in link.points if p[1] == scorer]
        if own:
            name = f"{decisions.SCORER_LABELS[scorer]} ({method})"
            ax.scatter([p[2] for p in own], [p[3] for p in own], color=colors[scorer], label=name, zorder=2)
    ax.set_xlabel("Kendall τ-b with the Monte Carlo values (mean over states)")
    ax.set_ylabel("test reward of the method it guides")
    ax.set_title("Ranking a step's candidates vs decoding reward")
    ax.legend(fontsize=7)
    add_note(
        fig,
        [
            "One point per seed and scorer; grey lines join a seed's points. Within-seed correlation "
            f"r = {fmt.f(link.r, 2)} over {link.n} points (each seed's mean taken out of both axes).",
        ],
    )
    return save(fig, out, "decisions")


def figures(fd: Findings, out: Path) -> dict[str, str]:
    """Every figure of the report into ``out``; returns their paths."""
    paths = {**_rewards(fd, out), **_agreement(fd, out)}
    if fd.ev.ablation:
        paths.update(_ablation(fd, out))
    if fd.ranking is not None:
        paths.update(_decisions(fd, out))
    return paths
