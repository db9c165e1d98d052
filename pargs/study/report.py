"""The study's report under ``<out>/report/``: Markdown, CSV and figures (PNG + PDF, pargs/commands/figures.py).

``study.md`` holds every section; ``claims.md`` is the "Paper claims vs what the embedded study shows"
table alone (the README includes it verbatim). Every number is computed from the seed directories
(:mod:`pargs.study.evidence`); every verdict by the rule of :mod:`pargs.metrics.claims`.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import re
from collections import defaultdict
from pathlib import Path

from pargs.metrics.claims import ALPHA, mean_se, smallest_p
from pargs.study import decisions
from pargs.study.evidence import (
    SIMILAR_MARGIN,
    THEOREM1,
    Evidence,
    agreement_rate,
    decision_claims,
    label,
    method_claims,
    pooled_summary,
    theorem1,
)
from pargs.study.grids import FIXED_BETA, GUIDED, SELECTION, beta_name
from pargs.tasks.synthetic import ORACLE_NAME

log = logging.getLogger(__name__)

#: test rows in table order (the Best-of-N row and the beta = 1.5 rows are placed by :func:`_order`)
ORDER = ("greedy", "top-k", "best-of-n", "args", "args-sampled", "pargs-g", "pargs", "cd-fudge", "dpo", "ppo")
REWARD_NOTE = (
    f"reward: the {ORACLE_NAME} (the task's hidden oracle, pargs/tasks/synthetic.py `oracle_reward`), "
    "never a learned RM"
)


def _f(x: float | None, digits: int = 3, sign: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def _p(p: float) -> str:
    return f"{p:.1e}" if p < 1e-3 else f"{p:.3f}"


def _ms(values: list[float]) -> str:
    mean, se = mean_se(values) if values else (math.nan, math.nan)
    return f"{_f(mean)} ± {_f(se)}"


def _order(ev: Evidence) -> list[str]:
    names = [ev.best_of_n if m == "best-of-n" else m for m in ORDER]
    rows = [m for m in names if m in ev.rewards]
    rows += [beta_name(g, FIXED_BETA) for g in GUIDED if beta_name(g, FIXED_BETA) in ev.rewards]
    return rows + sorted(m for m in ev.rewards if m not in rows)


def seed_means(ev: Evidence, method: str) -> dict[int, float]:
    """Per seed: the method's mean over test prompts of the per-prompt mean oracle reward."""
    return {s: sum(v.values()) / len(v) for s, v in ev.rewards[method].items()}


# ------------------------------------------------------------------------------------------------ sections
def methods_table(ev: Evidence) -> list[str]:
    from pargs.metrics.diversity import diversity

    seeds = ev.seeds
    head = [
        "method",
        "prompts × samples",
        "reward, mean ± SE over seeds",
        *[f"seed {s}" for s in seeds],
        "self-ROUGE-L (lower = more diverse)",
        "ms/token",
    ]
    lines = ["| " + " | ".join(head) + " |", "|---|---:|" + "---:|" * (len(head) - 2)]
    for m in _order(ev):
        per = seed_means(ev, m)
        div = [diversity(ev.texts[m][s])[0] for s in seeds if ev.samples[m] >= 2]
        cells = [
            label(m),
            f"{ev.prompts[m]} × {ev.samples[m]}",
            _ms([per[s] for s in seeds]),
            *[_f(per[s]) for s in seeds],
            _f(sum(div) / len(div)) if div else "–",
            _f(sum(ev.timing[m].values()) / len(seeds), 3),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        f"{REWARD_NOTE}. Each seed's value is the mean over the test prompts of the per-prompt mean over "
        f"samples; the SE is over the {len(seeds)} seeds (sample standard deviation / sqrt(S)). Rows without a "
        f"β are at the β chosen per seed on the validation prompts (see Tuning); the (β = {FIXED_BETA:g}) rows "
        "use the paper's fixed β. DPO and PPO are their chosen grid point's policy, top-k sampled; top-k is "
        "their initial policy decoded the same way. self-ROUGE-L: mean pairwise ROUGE-L between a prompt's "
        "samples, averaged over seeds. ms/token: decoding time per generated token on this machine, averaged "
        "over seeds.",
    ]
    return lines


def _count_positive(diffs: list[float]) -> str:
    return f"{sum(d > 0 for d in diffs)}/{len(diffs)}"


def claims_table(ev: Evidence, claims, t1, alpha: float = ALPHA) -> list[str]:
    """The "Paper claims vs what the embedded study shows" table."""
    s = len(ev.seeds)
    lines = [
        "| claim | the paper | what the study shows (A − B, mean ± SE over seeds; seeds with A > B; "
        "across-seed p of the claim) | verdict |",
        "|---|---|---|---|",
    ]
    by_pair: dict[tuple, list] = defaultdict(list)
    for c in claims:
        key = tuple(x.split("@b")[0] for x in (c.a, c.b))
        by_pair[key].append(c)
    for (a, b), views in by_pair.items():
        numbers, verdicts = [], []
        for c in views:
            mean, se = c.claim.diff_mean_se
            diffs = [x.diff for x in c.claim.seeds]
            relation = _relation(c.claim)
            sig = sum(x.p_for <= alpha for x in c.claim.seeds), sum(x.p_against <= alpha for x in c.claim.seeds)
            numbers.append(
                f"{c.view}: {_f(mean, sign=True)} ± {_f(se)}; {_count_positive(diffs)}; p({relation}) = "
                f"{_p(c.claim.across_for)}; seeds significantly for / against {relation}: {sig[0]} / {sig[1]}"
            )
            verdicts.append(f"{c.claim.verdict} ({c.view})" if len(views) > 1 else c.claim.verdict)
        note = _claim_note(ev, b)
        name = f"{label(a)} vs {label(b)}"
        lines.append(
            f"| {name} | {views[0].statement} | "
            + "<br>".join(numbers)
            + (f"<br>{note}" if note else "")
            + " | "
            + "<br>".join(verdicts)
            + " |"
        )
    truth = [t for t in t1.tests if t.against == "truth" and t.slice == "all"]
    label_view = {t.fraction: t for t in t1.tests if t.against == "label" and t.slice == "all"}
    contrast = {t.fraction: t for t in t1.tests if t.against == "truth" and t.slice == "contrast"}
    parts = []
    for t in truth:
        lv, cv = label_view[t.fraction], contrast[t.fraction]
        parts.append(
            f"{round(t.fraction * 100)} %: {_f(t.partial)} vs {_f(t.full)} (n = {t.n}; seeds with partial > full "
            f"{_count_positive(t.per_seed_diff)}, across-seed p = {_p(t.across_for)}; pooled McNemar "
            f"p = {_p(t.pooled_for.p_value)}; {t.verdict}; vs label {_f(lv.partial)} vs {_f(lv.full)}; "
            f'"but"-contrast pairs {_f(cv.partial)} vs {_f(cv.full)}, n = {cv.n})'
        )
    lines.append(
        f"| Partial vs full RM on prefixes | {THEOREM1} | agreement with the Monte Carlo ground truth, "
        f"partial vs full RM, pooled over {s} seeds:<br>" + "<br>".join(parts) + f" | {t1.verdict} "
        "(25–75 %) |"
    )
    notes = sorted({c.claim.note for c in claims if c.claim.note})
    lines += ["", _rule_text(s, alpha), *(["", *notes] if notes else []), "", wall_time_line(ev)]
    return lines


def _relation(claim) -> str:
    """The claim's hypothesis in the table's words: ``A > B``, or ``A > B − 0.2`` for a margin of 0.2."""
    return f"A > B − {claim.margin:g}" if claim.margin else "A > B"


def wall_time_line(ev: Evidence) -> str:
    """One line: the study's wall time in total and per step family, with the machine's load."""
    fam = timing_rows(ev)
    total = sum(v for per in fam.values() for v in per.values())
    load = f", 1-minute load average {_load(ev)}" if _load(ev) else ""
    parts = ", ".join(f"{name} {sum(per.values()) / 60:.1f}" for name, per in fam.items())
    ablation = sum(v for name, per in fam.items() if name.startswith("ablation") for v in per.values())
    return (
        f"Measured wall time of the study: {total / 60:.1f} min for {len(ev.records)} seeds on {_cores(ev)} CPU "
        f"cores{load}: {(total - ablation) / 60:.1f} min for the pipeline, {ablation / 60:.1f} min for the "
        f"ablation (minutes per step, all seeds: {parts}); report/study.md has it per seed."
    )


def _claim_note(ev: Evidence, b: str) -> str:
    if b not in ("dpo", "ppo"):
        return ""
    beats = [s for s in ev.seeds if ev.tuning[s][b]["beats_initial_policy"]]
    if len(beats) == len(ev.seeds):
        return f"{label(b)} beat its initial policy on the validation prompts in every seed."
    return (
        f"{label(b)} beat its initial policy (the SFT model, top-k) on the validation prompts in "
        f"{len(beats)} of {len(ev.seeds)} seeds: see Tuning for the grid."
    )


def _rule_text(s: int, alpha: float) -> str:
    return (
        f'Verdicts are computed (pargs/metrics/claims.py `verdict`), α = {alpha:g}. A claim "A beats B" is '
        "*supported* when the across-seed test finds A > B and no seed finds A significantly worse; *not supported* "
        "when no seed finds A significantly better (no evidence for it), or the across-seed test finds A < B "
        '(evidence against it); *mixed* otherwise. A claim "A performs similarly to B" is read as "A is not worse '
        f'than B by more than δ = {SIMILAR_MARGIN:g}" (non-inferiority) and decided by the same rule on A + δ vs B, '
        "so it needs evidence that the gap is within δ, not just the absence of a significant deficit. Per seed: "
        "one-sided Wilcoxon signed-rank tests paired by test prompt (RMs: McNemar's exact test paired by preference "
        f"pair). Across seeds: the exact one-sided Wilcoxon signed-rank test on the {s} per-seed differences (of "
        "mean reward; for the RMs, of the share of pairs right), whose smallest attainable p is "
        f"1/2^{s} = {smallest_p(s):.4g} (reached only when every seed agrees). Theorem 1's verdict combines 25, 50 "
        "and 75 % of the response: supported if all three are, not supported if all three are not, mixed otherwise."
    )


def claim_details(claims, alpha: float) -> list[str]:
    lines = []
    for c in claims:
        cl = c.claim
        mean, se = cl.diff_mean_se
        lines += [
            f"### {cl.name} ({c.view}): {cl.verdict}",
            "",
            f"| seed | A | B | A − B | prompts | p ({_relation(cl)}) | p (not {_relation(cl)}) |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for x in cl.seeds:
            lines.append(
                f"| {x.seed} | {_f(x.a)} | {_f(x.b)} | {_f(x.diff, sign=True)} | {x.n_prompts} | "
                f"{_p(x.p_for)} | {_p(x.p_against)} |"
            )
        lines += [
            "",
            f"A − B over seeds: {_f(mean, sign=True)} ± {_f(se)}; exact signed-rank across seeds: "
            f"p({_relation(cl)}) = {_p(cl.across_for)}, p(the opposite) = {_p(cl.across_against)}. Claim kind: "
            f"{'A beats B' if cl.kind == 'better' else f'A is not worse than B by more than {cl.margin:g}'}."
            + (f" {cl.note}." if cl.note else ""),
            "",
        ]
    return lines


def theorem1_section(ev: Evidence, t1) -> list[str]:
    seeds = ev.seeds
    meta = [ev.gt_meta[s] for s in seeds]
    lines = [
        "| reference | pairs | prefix | partial RM | full RM | n | per-seed p (partial > full) | across-seed p "
        "(partial > full) | across-seed p (partial < full) | pooled p (partial > full) | verdict |",
        "|---|---|---:|---:|---:|---:|---|---:|---:|---:|---|",
    ]
    for t in t1.tests:
        per = ", ".join(_p(x.p_value) for x in t.per_seed_for)
        ref = "ground truth" if t.against == "truth" else "label"
        part = "all" if t.slice == "all" else '"but"-contrast'
        lines.append(
            f"| {ref} | {part} | {round(t.fraction * 100)} % | "
            f"{_f(t.partial)} | {_f(t.full)} | {t.n} | {per} | {_p(t.across_for)} | {_p(t.across_against)} | "
            f"{_p(t.pooled_for.p_value)} | {t.verdict} |"
        )
    ses = defaultdict(list)
    for m in meta:
        for f, v in m["mean_se"].items():
            ses[float(f)].append(v)
    se_text = ", ".join(f"{round(f * 100)} %: {sum(v) / len(v):.3f}" for f, v in sorted(ses.items()))
    lines += [
        "",
        f"Ground truth: for the first {meta[0]['pairs']} held-out preference pairs of each seed "
        f"(pairs_val.jsonl), the oracle's expected final reward of each prefix when the SFT model (pi_ref) "
        f"completes it, the mean of m = {meta[0]['m']} sampled completions (pargs/metrics/prefix_values.py); "
        f"mean SE of a sampled prefix value: {se_text} (a complete response is scored exactly). The "
        "partial / full columns are the shares of pairs whose better prefix the RM scores higher, pooled over "
        "seeds (ties in the ground truth left out, an RM's tie counts one half); the McNemar tests count only "
        "pairs where both RMs make a call. The label rows are the paper's Table 12 view (the chosen response's "
        'prefix scores higher), which the partial RM was trained on. "but"-contrast pairs: either response '
        'ends with a "but" clause that overturns the sentiment before it (pargs/tasks/synthetic.py '
        "`but_contrast`).",
    ]
    for rm in ("rm_partial", "rm_full"):
        summary = pooled_summary(ev, rm)
        lines.append(
            f"- {rm}, pooled: "
            + "; ".join(
                f"{round(f * 100)} %: label {_f(x.label)}, ground truth {_f(x.truth)} (n = {x.n_truth}), |z| > 2 "
                f"{_f(x.truth_confident)} (n = {x.n_confident})"
                for f, x in summary.items()
            )
        )
    return lines


def _msn(values: list[float]) -> str:
    """:func:`_ms` of the values that are not NaN."""
    return _ms([v for v in values if not math.isnan(v)])


def _counts(values: list[float]) -> str:
    """Per-seed counts, e.g. ``118, 120, 119``."""
    return ", ".join(str(round(v)) for v in values)


def decisions_section(summaries: dict, link, plan) -> list[str]:
    """The decision-level section (pargs/study/decisions.py): the table per scorer, how the values were made, and
    whether ranking better goes with a higher decoding reward."""
    if not summaries:
        return ["Not run: no seed has decisions.csv.gz (a study from before the step existed)."]
    seeds = sorted(summaries)
    lines = [
        "| scorer (guides) | " + " | ".join(decisions.METRICS.values()) + " |",
        "|---|" + "---:|" * len(decisions.METRICS),
    ]
    for scorer, method in decisions.SCORERS.items():
        cells = [_msn([summaries[s].metrics[scorer][m] for s in seeds]) for m in decisions.METRICS]
        lines.append(f"| {decisions.SCORER_LABELS[scorer]} ({method}) | " + " | ".join(cells) + " |")
    one = summaries[seeds[0]]
    counted = "; ".join(
        f"{decisions.METRICS[m]}: {_counts([summaries[s].counted[m] for s in seeds])}" for m in ("tau", "tau_eos")
    )
    lines += [
        "",
        f"Cells: the mean over a seed's states, mean ± SE over {len(seeds)} seeds. Per seed: {one.states} decoding "
        f"states on the validation prompts (each a response of the SFT model, pi_ref, cut at a uniformly random "
        f"step), k = {plan.decision_k} candidates each (pi_ref's most likely next tokens, as the guided methods take "
        f"them); states with an EOS candidate per seed: {_counts([summaries[s].with_eos for s in seeds])}. A "
        f"candidate's value: the oracle's expected final reward when pi_ref completes the response after it, the "
        f"mean of m = {plan.decision_m} completions with common random numbers across the candidates of a state "
        "(pargs/metrics/decision_values.py); an EOS candidate's value is its complete response's reward. Mean SE of "
        f"a value {_msn([summaries[s].mean_se for s in seeds])}; of the difference between a sampled candidate and "
        f"its state's best (where that is sampled too), paired by completion, "
        f"{_msn([summaries[s].se_diff_paired for s in seeds])} (independent draws would give "
        f"{_msn([summaries[s].se_diff_independent for s in seeds])}).",
        "",
        "τ-b: Kendall's tau-b between a scorer's scores and the values over the candidate pairs of a state; "
        '"pairs with EOS" are the pairs with a candidate that ends the response (stop here or go on?), "other '
        'pairs" the rest (which continuation?). Ties: a pair tied in the values or in the scores counts neither '
        "way and leaves the denominator (tau-b); values tie exactly on "
        f"{', '.join(f'{100 * summaries[s].value_ties:.0f}' for s in seeds)} % of the pairs per seed (common random "
        "numbers make two candidates the reward cannot tell apart tie); a state whose values all tie has no order "
        f"to recover and is left out (states counted per seed, {counted}). Top-1: the chance that the scorer's "
        "best candidate (its ties broken at random) is a best one by value. pargs/metrics/rank_agreement.py has the "
        "definitions. The claim (partial vs full RM) pairs the two RMs' τ-b by state within a seed (its per-seed "
        "table under Claims, seed by seed, counts states in the column 'prompts') and takes seeds as the unit "
        "across them.",
    ]
    if link is not None:
        lines += [
            "",
            "**Does ranking better go with a higher decoding reward?** Correlation of a scorer's mean τ-b with the "
            f"test reward of the method it guides, each with its seed's mean taken out, over {link.n} (seed, "
            f"method) points: **r = {_f(link.r, 2)}**. Over seeds, the partial RM's τ-b advantage over the full RM "
            f"against PARGS's reward gain over ARGS-sampled: r = {_f(link.r_gain, 2)} ({link.n_gain} seeds). The "
            "methods sample their candidates in proportion to exp(log-probability + β × score), so the reward also "
            "depends on β and on the log-probability; top-k is the log-probability alone (β = 0).",
        ]
    return lines


def decisions_figure(link, out: Path) -> dict[str, str]:
    """Mean τ-b per scorer against the test reward of the method it guides, one point per seed and method."""
    from matplotlib.figure import Figure

    from pargs.commands.figures import add_note, save

    fig = Figure(figsize=(6, 4.6))
    ax = fig.subplots()
    for s in sorted({p[0] for p in link.points}):
        own = sorted((p for p in link.points if p[0] == s), key=lambda p: p[2])
        ax.plot([p[2] for p in own], [p[3] for p in own], color="lightgray", linewidth=0.8, zorder=1)
    colors = {"partial": "tab:green", "full": "tab:orange", "value": "tab:purple", "logp": "tab:gray"}
    for scorer, method in decisions.SCORERS.items():
        own = [p for p in link.points if p[1] == scorer]
        if own:
            label = f"{decisions.SCORER_LABELS[scorer]} ({method})"
            ax.scatter([p[2] for p in own], [p[3] for p in own], color=colors[scorer], label=label, zorder=2)
    ax.set_xlabel("Kendall τ-b with the Monte Carlo values (mean over states)")
    ax.set_ylabel("test reward of the method it guides")
    ax.set_title("Ranking a step's candidates vs decoding reward")
    ax.legend(fontsize=7)
    add_note(
        fig,
        [
            f"One point per seed and scorer; grey lines join a seed's points. Within-seed correlation r = "
            f"{_f(link.r, 2)} over {link.n} points (each seed's mean taken out of both axes).",
        ],
    )
    return save(fig, out, "decisions")


def tuning_section(ev: Evidence, plan) -> list[str]:
    seeds = ev.seeds
    lines = [
        f"Selection criterion: {SELECTION}. Validation prompts: {plan.sizes.get('n_val_prompts')} held-out "
        f"prompt combinations, none of them a test or training prompt; sampled methods draw {plan.val_samples} "
        "samples per prompt, greedy ones one.",
        "",
        "#### β of the guided methods",
        "",
        "| method | " + " | ".join(f"β = {b:g}" for b in plan.betas) + " | chosen β per seed |",
        "|---|" + "---:|" * len(plan.betas) + "---|",
    ]
    for g in GUIDED:
        cells = []
        for b in plan.betas:
            vals = [ev.tuning[s]["guided"][g]["values"][f"{b:g}"] for s in seeds]
            cells.append(_ms(vals))
        chosen = ", ".join(f"{ev.tuning[s]['guided'][g]['chosen']:g}" for s in seeds)
        lines.append(f"| {label(g)} | " + " | ".join(cells) + f" | {chosen} |")
    lines += ["", "Cells: mean validation oracle reward ± SE over seeds.", ""]
    initial = [ev.tuning[s]["initial_policy"]["reward"] for s in seeds]
    for family, what in (("dpo", "DPO (β, learning rate)"), ("ppo", "PPO (KL coefficient)")):
        grid = ev.tuning[seeds[0]][family]["grid"]
        keys = [k for k in grid[0] if k not in ("name", "reward")]
        lines += [
            f"#### {what}",
            "",
            "| grid point | "
            + " | ".join(keys)
            + " | validation reward, mean ± SE | "
            + " | ".join(f"seed {s}" for s in seeds)
            + " |",
            "|---|" + "---:|" * (len(keys) + 1 + len(seeds)),
        ]
        for i, point in enumerate(grid):
            vals = [ev.tuning[s][family]["grid"][i]["reward"] for s in seeds]
            lines.append(
                f"| {point['name']} | "
                + " | ".join(f"{point[k]:g}" for k in keys)
                + f" | {_ms(vals)} | "
                + " | ".join(_f(v) for v in vals)
                + " |"
            )
        lines.append(
            "| initial policy (SFT, top-k) | "
            + " | ".join("–" for _ in keys)
            + f" | {_ms(initial)} | "
            + " | ".join(_f(v) for v in initial)
            + " |"
        )
        chosen = [ev.tuning[s][family] for s in seeds]
        beat = [s for s, c in zip(seeds, chosen) if c["beats_initial_policy"]]
        lines += [
            "",
            "Chosen per seed: "
            + ", ".join(f"seed {s}: {c['chosen_name']}" for s, c in zip(seeds, chosen))
            + f". The chosen {family.upper()} beats its initial policy on validation reward in {len(beat)} of "
            f"{len(seeds)} seeds"
            + ("." if len(beat) == len(seeds) else f"; it does not in seed(s) {[s for s in seeds if s not in beat]}."),
            "",
        ]
    return lines


def sizes_section(ev: Evidence, plan, ablation_seeds: list[int]) -> list[str]:
    """The plan's sizes (pargs/study/plan.py) in words."""
    test = ev.prompts.get("top-k", 0)
    return [
        f"- seeds: {len(ev.seeds)} ({ev.seeds}); data per seed: {_sizes_text(plan.sizes)}",
        f"- validation (tuning): {plan.sizes.get('n_val_prompts')} prompts × {plan.val_samples} samples (greedy "
        f"methods: 1); test: {test} prompts × {plan.test_samples} samples; Best-of-N: N = {plan.best_of_n}",
        f"- grids: {len(plan.betas)} β values × {len(GUIDED)} guided methods, {len(plan.dpo_grid)} DPO and "
        f"{len(plan.ppo_kl)} PPO settings (each trained per seed)",
        f"- ground truth: {plan.gt_pairs} held-out pairs × 4 fractions × 2 sides × m = {plan.gt_m} completions",
        f"- decision-level evidence: {plan.decision_states} decoding states on the validation prompts × k = "
        f"{plan.decision_k} candidates × m = {plan.decision_m} completions",
        f"- ablation: prefix_rows {list(plan.ablation_ratios)} on seeds {ablation_seeds}, PARGS on "
        f"{plan.ablation_prompts or 'all'} test prompts × {plan.ablation_samples} samples",
    ]


def _sizes_text(sizes: dict) -> str:
    return (
        ", ".join(f"{k} = {v}" for k, v in sizes.items()) + " (other sizes: the quickstart's, "
        "pargs/tasks/synthetic_prepare.py SyntheticSizes)"
    )


def budget_section(ev: Evidence, plan, out: Path) -> list[str]:
    s0 = ev.seeds[0]
    recs = ev.records[s0]
    seed_dir = Path(out) / f"seed-{s0}"
    with open(seed_dir / "data" / "pairs_train.jsonl") as fh:
        sizes = {"n_pairs": sum(1 for _ in fh)}

    def epochs(step: str) -> int:
        return recs[step]["config"]["trainer"]["max_epochs"]

    def batch(step: str) -> int:
        return recs[step]["config"]["data"]["init_args"]["batch_size"]

    rollouts = 0
    for path in (seed_dir / "rollouts").glob("*.jsonl"):
        with open(path) as fh:
            rollouts += sum(1 for _ in fh)
    rm_steps = math.ceil(sizes["n_pairs"] / batch("reward_full")) * epochs("reward_full")
    held_out = recs["value"]["config"]["data"]["init_args"].get("val_fraction", 0.0)
    value_steps = math.ceil(rollouts * (1 - held_out) / batch("value")) * epochs("value")
    samples = recs["value_rollouts"]["config"]["model"]["init_args"]["methods"][0]["samples"]
    ppo = recs["ppo-0"]["config"]
    return [
        "| model | trained on | epochs | optimizer steps (about) |",
        "|---|---|---:|---:|",
        f"| partial RM, full RM (each) | {sizes['n_pairs']} preference pairs | {epochs('reward_full')} | {rm_steps} |",
        f"| CD-FUDGE value model | {rollouts} rollouts ({rollouts // samples} training prompts × {samples} samples "
        f"of the SFT model, top-k, each scored by the full RM); {held_out:.0%} of the prompts held out | "
        f"{epochs('value')} | {value_steps} |",
        f"| DPO (each grid point) | the RMs' {sizes['n_pairs']} pairs, LoRA r = α = 16 | {epochs('dpo-0')} | "
        f"{math.ceil(sizes['n_pairs'] / batch('dpo-0')) * epochs('dpo-0')} |",
        f"| PPO (each grid point) | training prompts, {ppo['data']['init_args']['batch_size']} per iteration, "
        f"rewards from the full RM | {epochs('ppo-0')} | {ppo['model']['init_args']['ppo_epochs']} updates per "
        "iteration |",
        "",
        "Steps: epochs × ceil(rows / batch size) (the value model: about 90 % of the rollouts train).",
    ]


def ablation_section(ev: Evidence, plan, ablation_seeds: list[int]) -> list[str]:
    if not ev.ablation:
        return ["Not run (--no-ablation)."]
    lines = [
        "| RM of PARGS | reward, mean ± SE over seeds | " + " | ".join(f"seed {s}" for s in ablation_seeds) + " |",
        "|---|---:|" + "---:|" * len(ablation_seeds),
    ]
    for m in ["pargs-dense", *(f"pargs-rows-{r:g}x" for r in plan.ablation_ratios)]:
        if m not in ev.ablation:
            continue
        vals = [ev.ablation[m].get(s, math.nan) for s in ablation_seeds]
        name = (
            "dense partial RM (every prefix, the main study's)"
            if m == "pargs-dense"
            else f"materialised prefixes, prefix_rows = {m.split('-')[-1]}"
        )
        lines.append(
            f"| {name} | {_ms([v for v in vals if not math.isnan(v)])} | " + " | ".join(_f(v) for v in vals) + " |"
        )
    n = next(iter(ev.ablation_prompts.values()))
    lines += [
        "",
        f"PARGS (β = {FIXED_BETA:g}, the paper's) from a causal partial RM trained on materialised prefix "
        f"pairs, round(r × pairs) rows per epoch for r = prefix_rows, the RMs' epochs; decoded on the first {n} "
        f"test prompts × {plan.ablation_samples} samples, seeds {ablation_seeds}. {REWARD_NOTE}.",
    ]
    return lines


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


def timing_section(ev: Evidence) -> list[str]:
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
        lines.append(
            f"| {name} | {sum(vals) / len(vals):.1f} | "
            + " | ".join(f"{v:.1f}" for v in vals)
            + f" | {sum(vals):.1f} |"
        )
    load = _load(ev) or "unknown"
    lines += [
        "| **all steps** | | " + " | ".join("" for _ in seeds) + f" | **{total:.1f}** ({total / 60:.1f} min) |",
        "",
        f"Seconds each step took when it ran (steps/<step>.json of each seed; a resumed study adds up the "
        f"times of its runs); the report's own time is in study.json. 1-minute load average while the steps "
        f"ran: {load}, on {_cores(ev)} cores; on a shared machine the times are upper bounds.",
    ]
    return lines


def _load(ev: Evidence) -> str:
    """The range of the 1-minute load average recorded before and after each step, or ""."""
    loads = [
        x
        for recs in ev.records.values()
        for r in recs.values()
        for x in (r.get("load_average") or {}).values()
        if x is not None
    ]
    return f"{min(loads):.1f}–{max(loads):.1f}" if loads else ""


def _cores(ev: Evidence) -> str:
    """The CPU count of the machine(s) the steps ran on, as their records say (this machine's for old records)."""
    counts = {r.get("cpu_count") or os.cpu_count() for recs in ev.records.values() for r in recs.values()}
    return "/".join(str(c) for c in sorted(counts)) or str(os.cpu_count())


# ------------------------------------------------------------------------------------------------ figures
def figures(ev: Evidence, plan, ablation_seeds: list[int], out: Path, t1) -> dict[str, str]:
    """Test reward per method, the RMs' agreement with the ground truth per fraction, and the ablation; each as PNG
    and PDF (pargs/commands/figures.py `save`), with mean ± SE across seeds and a note on what is left out."""
    from matplotlib.figure import Figure

    from pargs.commands.figures import add_note, left_out, save

    paths = {}
    rows = _order(ev)
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
    paths.update(save(fig, out, "rewards"))

    truth = [t for t in t1.tests if t.against == "truth" and t.slice == "all"]
    fig = Figure(figsize=(5.5, 4.2))
    ax = fig.subplots()
    for rm, color, name in (("rm_partial", "tab:green", "partial RM"), ("rm_full", "tab:orange", "full RM")):
        xs, ys, es = [], [], []
        for t in truth:
            mean, se = mean_se(
                [
                    agreement_rate([o for o in ev.outcomes[s][rm] if o.fraction == t.fraction], "truth")[0]
                    for s in ev.seeds
                ]
            )
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
    paths.update(save(fig, out, "prefix_agreement"))

    if ev.ablation:
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
                f"Mean ± 1 SE across seeds {ablation_seeds} (band: the dense RM's SE); grey: each seed. PARGS "
                f"at β = {FIXED_BETA:g} only, on the first {plan.ablation_prompts or 'all'} test prompts.",
                left_out(["every other method"], "the ablation changes PARGS's RM only"),
            ],
        )
        paths.update(save(fig, out, "ablation"))
    return paths


# ------------------------------------------------------------------------------------------------ CSV
def _csv(path: Path, header: list[str], rows) -> str:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return str(path)


def write_csvs(ev: Evidence, claims, t1, out: Path) -> dict[str, str]:
    paths = {}
    paths["methods_csv"] = _csv(
        out / "methods.csv",
        ["method", "seed", "reward", "prompts", "samples", "ms_per_token"],
        [
            (m, s, v, ev.prompts[m], ev.samples[m], ev.timing[m][s])
            for m in _order(ev)
            for s, v in seed_means(ev, m).items()
        ],
    )
    paths["claims_csv"] = _csv(
        out / "claims.csv",
        [
            "claim",
            "view",
            "kind",
            "margin",
            "seed",
            "a",
            "b",
            "diff",
            "p_a_greater",
            "p_a_less",
            "across_p_a_greater",
            "across_p_a_less",
            "verdict",
        ],
        [
            (
                c.claim.name,
                c.view,
                c.claim.kind,
                c.claim.margin,
                x.seed,
                x.a,
                x.b,
                x.diff,
                x.p_for,
                x.p_against,
                c.claim.across_for,
                c.claim.across_against,
                c.claim.verdict,
            )
            for c in claims
            for x in c.claim.seeds
        ],
    )
    paths["theorem1_csv"] = _csv(
        out / "theorem1.csv",
        [
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
        ],
        [
            (
                t.against,
                t.slice,
                t.fraction,
                s,
                x.a_only,
                x.b_only,
                x.n_items,
                x.p_value,
                d,
                t.across_for,
                t.across_against,
                t.pooled_for.p_value,
                t.pooled_against.p_value,
                t.verdict,
            )
            for t in t1.tests
            for s, x, d in zip(ev.seeds, t.per_seed_for, t.per_seed_diff)
        ],
    )
    rows = []
    for s in ev.seeds:
        for g in GUIDED:
            for b, v in ev.tuning[s]["guided"][g]["values"].items():
                rows.append((s, g, f"beta={b}", v, float(b) == ev.tuning[s]["guided"][g]["chosen"]))
        for family in ("dpo", "ppo"):
            for p in ev.tuning[s][family]["grid"]:
                rows.append((s, family, p["name"], p["reward"], p["name"] == ev.tuning[s][family]["chosen_name"]))
        rows.append((s, "initial policy", "sft-top-k", ev.tuning[s]["initial_policy"]["reward"], ""))
    paths["tuning_csv"] = _csv(out / "tuning.csv", ["seed", "method", "setting", "validation_reward", "chosen"], rows)
    if ev.ablation:
        paths["ablation_csv"] = _csv(
            out / "ablation.csv",
            ["method", "seed", "reward"],
            [(m, s, v) for m, per in ev.ablation.items() for s, v in per.items()],
        )
    fam = timing_rows(ev)
    paths["timing_csv"] = _csv(
        out / "timing.csv", ["step", "seed", "seconds"], [(f, s, v) for f, per in fam.items() for s, v in per.items()]
    )
    return paths


# ------------------------------------------------------------------------------------------------ the report
def write_report(out: Path, seeds: list[int], ablation_seeds: list[int], plan, alpha: float = ALPHA) -> dict:
    """Collect, test and write everything under ``<out>/report``; return the paths and the claims table."""
    from pargs.report import build_report
    from pargs.study.evidence import collect

    out = Path(out)
    folder = out / "report"
    folder.mkdir(parents=True, exist_ok=True)
    for s in seeds:  # each seed's full results table (text metrics, FLOPs, time), as pargs report makes it
        build_report(
            [out / f"seed-{s}" / "predictions" / "test"],
            out / f"seed-{s}" / "report",
            baseline="pargs",
            figures=False,
            reward_name=ORACLE_NAME,
        )
    ev = collect(out, seeds, ablation_seeds)
    claims = method_claims(ev, alpha) + decision_claims(ev, alpha)
    t1 = theorem1(ev, alpha)
    summaries = {s: decisions.summarise_seed(rows) for s, rows in ev.decisions.items()}
    link = decisions.ranking_vs_reward(summaries, {m: seed_means(ev, m) for m in ev.rewards}) if summaries else None
    table = claims_table(ev, claims, t1, alpha)
    (folder / "claims.md").write_text("\n".join(table) + "\n")
    paths = {"markdown": str(folder / "study.md"), "claims": str(folder / "claims.md")}
    paths.update(write_csvs(ev, claims, t1, folder))
    paths.update(figures(ev, plan, ablation_seeds, folder, t1))
    if summaries:
        header = ["seed", "scorer", "metric", "mean_over_states", "states"]
        rows = [
            (s, scorer, m, summary.metrics[scorer][m], summary.counted[m])
            for s, summary in sorted(summaries.items())
            for scorer in decisions.SCORERS
            for m in decisions.METRICS
        ]
        paths["decisions_csv"] = _csv(folder / "decisions.csv", header, rows)
        paths.update(decisions_figure(link, folder))
    md = [
        f"# pargs study: {len(seeds)} seeds on the embedded synthetic task",
        "",
        f"Seeds {seeds}; each redraws the synthetic data, the model initialisations and the decoding noise. "
        f"{REWARD_NOTE}. Per-seed tables with every metric: seed-<s>/report/results.md.",
        "",
        "## Paper claims vs what the embedded study shows",
        "",
        *table,
        "",
        "## Sizes",
        "",
        *sizes_section(ev, plan, ablation_seeds),
        "",
        "## Methods",
        "",
        *methods_table(ev),
        "",
        "![rewards](rewards.png)",
        "",
        "## Claims, seed by seed",
        "",
        *claim_details(claims, alpha),
        "## Theorem 1: the RMs on prefixes against a Monte Carlo ground truth",
        "",
        *theorem1_section(ev, t1),
        "",
        "![prefix agreement](prefix_agreement.png)",
        "",
        "## Decision-level evidence: ranking the candidates of one decoding step",
        "",
        *decisions_section(summaries, link, plan),
        "",
        *(["![decisions](decisions.png)", ""] if summaries else []),
        "## Tuning on the validation prompts",
        "",
        f"Declared grids (pargs/study/grids.py): β ∈ {list(plan.betas)} for {', '.join(label(g) for g in GUIDED)}; "
        f"DPO (β, lr) ∈ {[tuple(p) for p in plan.dpo_grid]}; PPO KL coefficient ∈ {list(plan.ppo_kl)}.",
        "",
        *tuning_section(ev, plan),
        "## Training budgets",
        "",
        *budget_section(ev, plan, out),
        "",
        "## Data-size ablation (the paper's Table 15)",
        "",
        *ablation_section(ev, plan, ablation_seeds),
        "",
        *(["![ablation](ablation.png)", ""] if ev.ablation else []),
        "## Wall time",
        "",
        *timing_section(ev),
        "",
    ]
    (folder / "study.md").write_text("\n".join(md) + "\n")
    for name, path in paths.items():
        log.info("study report %s: %s", name, path)
    return {"paths": paths, "claims_table": "\n".join(table), "claims": claims, "theorem1": t1, "evidence": ev}
