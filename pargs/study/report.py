"""The study's report under ``<out>/report/``: Markdown, CSV and figures (PNG + PDF, pargs/commands/figures.py).

``study.md`` holds every section; ``claims.md`` is the "Paper claims vs what the embedded study shows" table alone
(the README includes it verbatim). The report is computed from the study's evidence files alone
(``report/evidence/``, :mod:`pargs.study.evidence_files`): first every claim and verdict
(:func:`pargs.study.evidence.analyse`, the rule of :mod:`pargs.metrics.claims`), then the text, tables and figures
(this module, :mod:`pargs.study.claims_report`, :mod:`pargs.study.report_csv`, :mod:`pargs.study.report_figures`,
:mod:`pargs.study.report_runs`). ``pargs study --recompute DIR`` (:func:`recompute`) rebuilds it from those files.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

from pargs.errors import ConfigError
from pargs.metrics.claims import ALPHA
from pargs.metrics.reward_stats import mean_se
from pargs.study import decisions
from pargs.study import numbers as fmt
from pargs.study.evidence import Evidence, Findings, analyse, label, method_order, seed_means
from pargs.study.grids import FIXED_BETA, GUIDED, SELECTION
from pargs.tasks.synthetic import ORACLE_NAME

log = logging.getLogger(__name__)

EVIDENCE = "evidence"  #: the evidence folder under the report folder
REWARD_NOTE = (
    f"reward: the {ORACLE_NAME} (the task's hidden oracle, pargs/tasks/synthetic.py `oracle_reward`), "
    "never a learned RM"
)


def methods_table(ev: Evidence) -> list[str]:
    """Every test row: reward per seed and over seeds, self-ROUGE-L, ms per token."""
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
    for m in method_order(ev):
        per = seed_means(ev, m)
        div = [mean_se(list(ev.diversity[m][s].values()))[0] for s in seeds if ev.diversity.get(m, {}).get(s)]
        cells = [
            label(m),
            f"{ev.prompts[m]} × {ev.samples[m]}",
            fmt.ms([per[s] for s in seeds]),
            *[fmt.f(per[s]) for s in seeds],
            fmt.f(sum(div) / len(div)) if div else "–",
            fmt.f(sum(ev.timing[m].values()) / len(seeds), 3),
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


def tuning_section(ev: Evidence) -> list[str]:
    """The grids, every grid value's validation reward, the choices, and DPO and PPO against their initial policy."""
    seeds, plan = ev.seeds, ev.plan
    lines = [
        f"Declared grids (pargs/study/grids.py): β ∈ {list(plan.betas)} for {', '.join(label(g) for g in GUIDED)}; "
        f"DPO (β, lr) ∈ {[tuple(p) for p in plan.dpo_grid]}; PPO KL coefficient ∈ {list(plan.ppo_kl)}.",
        "",
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
            cells.append(fmt.ms(vals))
        chosen = ", ".join(f"{ev.tuning[s]['guided'][g]['chosen']:g}" for s in seeds)
        lines.append(f"| {label(g)} | " + " | ".join(cells) + f" | {chosen} |")
    lines += ["", "Cells: mean validation oracle reward ± SE over seeds.", ""]
    for family, what in (("dpo", "DPO (β, learning rate)"), ("ppo", "PPO (KL coefficient)")):
        lines += _trained_grid(ev, family, what)
    return lines


def _trained_grid(ev: Evidence, family: str, what: str) -> list[str]:
    """DPO's or PPO's grid: every point's validation reward per seed, the initial policy's, and the choices."""
    seeds = ev.seeds
    initial = [ev.tuning[s]["initial_policy"]["reward"] for s in seeds]
    grid = ev.tuning[seeds[0]][family]["grid"]
    keys = [k for k in grid[0] if k not in ("name", "reward")]
    lines = [
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
            + f" | {fmt.ms(vals)} | "
            + " | ".join(fmt.f(v) for v in vals)
            + " |"
        )
    lines.append(
        "| initial policy (SFT, top-k) | "
        + " | ".join("–" for _ in keys)
        + f" | {fmt.ms(initial)} | "
        + " | ".join(fmt.f(v) for v in initial)
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


def sizes_section(ev: Evidence) -> list[str]:
    """The plan's sizes (pargs/study/plan.py) in words."""
    plan = ev.plan
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
        f"- ablation: prefix_rows {list(plan.ablation_ratios)} on seeds {ev.ablation_seeds}, PARGS on "
        f"{plan.ablation_prompts or 'all'} test prompts × {plan.ablation_samples} samples",
    ]


def _sizes_text(sizes: dict) -> str:
    return (
        ", ".join(f"{k} = {v}" for k, v in sizes.items()) + " (other sizes: the quickstart's, "
        "pargs/tasks/synthetic_prepare.py SyntheticSizes)"
    )


def budget_section(ev: Evidence) -> list[str]:
    """What each model was trained on (seed 0's data and step configs, pargs/study/evidence_files.py)."""
    b = ev.budget
    return [
        "| model | trained on | epochs | optimizer steps (about) |",
        "|---|---|---:|---:|",
        f"| partial RM, full RM (each) | {b['n_pairs']} preference pairs | {b['rm_epochs']} | {b['rm_steps']} |",
        f"| CD-FUDGE value model | {b['rollouts']} rollouts ({b['rollouts'] // b['rollout_samples']} training prompts "
        f"× {b['rollout_samples']} samples of the SFT model, top-k, each scored by the full RM); "
        f"{b['value_held_out']:.0%} of the prompts held out | {b['value_epochs']} | {b['value_steps']} |",
        f"| DPO (each grid point) | the RMs' {b['n_pairs']} pairs, LoRA r = α = 16 | {b['dpo_epochs']} | "
        f"{b['dpo_steps']} |",
        f"| PPO (each grid point) | training prompts, {b['ppo_batch']} per iteration, rewards from the full RM | "
        f"{b['ppo_epochs']} | {b['ppo_updates']} updates per iteration |",
        "",
        "Steps: epochs × ceil(rows / batch size) (the value model: about 90 % of the rollouts train).",
    ]


def ablation_section(ev: Evidence) -> list[str]:
    """PARGS from the materialised-prefix RMs next to the dense partial RM, per seed."""
    plan, ablation_seeds = ev.plan, ev.ablation_seeds
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
            f"| {name} | {fmt.ms([v for v in vals if not math.isnan(v)])} | "
            + " | ".join(fmt.f(v) for v in vals)
            + " |"
        )
    n = next(iter(ev.ablation_prompts.values()))
    lines += [
        "",
        f"PARGS (β = {FIXED_BETA:g}, the paper's) from a causal partial RM trained on materialised prefix "
        f"pairs, round(r × pairs) rows per epoch for r = prefix_rows, the RMs' epochs; decoded on the first {n} "
        f"test prompts × {plan.ablation_samples} samples, seeds {ablation_seeds}. {REWARD_NOTE}.",
    ]
    return lines


def _ms_known(values: list[float]) -> str:
    """:func:`pargs.study.numbers.ms` of the values that are not NaN."""
    return fmt.ms([v for v in values if not math.isnan(v)])


def _counts(values: list[float]) -> str:
    """Per-seed counts, e.g. ``118, 120, 119``."""
    return ", ".join(str(round(v)) for v in values)


# a table and its notes, which are long
def decisions_section(fd: Findings) -> list[str]:
    """The decision-level section (pargs/study/decisions.py): the table per scorer, how the values were made, and
    whether ranking better goes with a higher decoding reward."""
    summaries, link, plan = fd.decisions, fd.ranking, fd.ev.plan
    if not summaries:
        return ["Not run: the evidence has no decisions.csv.gz (a study from before the decisions step existed)."]
    seeds = sorted(summaries)
    lines = [
        "| scorer (guides) | " + " | ".join(decisions.METRICS.values()) + " |",
        "|---|" + "---:|" * len(decisions.METRICS),
    ]
    for scorer, method in decisions.SCORERS.items():
        cells = [_ms_known([summaries[s].metrics[scorer][m] for s in seeds]) for m in decisions.METRICS]
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
        f"a value {_ms_known([summaries[s].mean_se for s in seeds])}; of the difference between a sampled candidate "
        f"and its state's best (where that is sampled too), paired by completion, "
        f"{_ms_known([summaries[s].se_diff_paired for s in seeds])} (independent draws would give "
        f"{_ms_known([summaries[s].se_diff_independent for s in seeds])}).",
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
            f"method) points: **r = {fmt.f(link.r, 2)}**. Over seeds, the partial RM's τ-b advantage over the full "
            f"RM against PARGS's reward gain over ARGS-sampled: r = {fmt.f(link.r_gain, 2)} ({link.n_gain} seeds). "
            "The methods sample their candidates in proportion to exp(log-probability + β × score), so the reward "
            "also depends on β and on the log-probability; top-k is the log-probability alone (β = 0).",
        ]
    return lines


def study_markdown(fd: Findings, table: list[str]) -> list[str]:
    """Every section of study.md, in order."""
    from pargs.study.claims_report import claim_details, theorem1_section
    from pargs.study.report_runs import environment_section, timing_section

    ev = fd.ev
    return [
        f"# pargs study: {len(ev.seeds)} seeds on the embedded synthetic task",
        "",
        f"Seeds {ev.seeds}; each redraws the synthetic data, the model initialisations and the decoding noise. "
        f"{REWARD_NOTE}. Per-seed tables with every metric: seed-<s>/report/results.md. Every number below is "
        f"computed from the files in {EVIDENCE}/ (pargs/study/evidence_files.py); `pargs study --recompute DIR` "
        "rebuilds this report from them.",
        "",
        "## Paper claims vs what the embedded study shows",
        "",
        *table,
        "",
        "## Sizes",
        "",
        *sizes_section(ev),
        "",
        "## Methods",
        "",
        *methods_table(ev),
        "",
        "![rewards](rewards.png)",
        "",
        "## Claims, seed by seed",
        "",
        *claim_details(fd),
        "## Theorem 1: the RMs on prefixes against a Monte Carlo ground truth",
        "",
        *theorem1_section(fd),
        "",
        "![prefix agreement](prefix_agreement.png)",
        "",
        "## Decision-level evidence: ranking the candidates of one decoding step",
        "",
        *decisions_section(fd),
        "",
        *(["![decisions](decisions.png)", ""] if fd.ranking is not None else []),
        "## Tuning on the validation prompts",
        "",
        *tuning_section(ev),
        "## Training budgets",
        "",
        *budget_section(ev),
        "",
        "## Data-size ablation (the paper's Table 15)",
        "",
        *ablation_section(ev),
        "",
        *(["![ablation](ablation.png)", ""] if ev.ablation else []),
        "## Wall time",
        "",
        *timing_section(ev),
        "",
        "## Environment",
        "",
        *environment_section(ev),
        "",
    ]


def report_from_evidence(folder: Path, alpha: float = ALPHA) -> dict:
    """Compute every claim and verdict from ``<folder>/evidence``, then write the report into ``folder``; return the
    paths, the claims table and the findings."""
    from pargs.study.claims_report import claims_table
    from pargs.study.evidence_files import load
    from pargs.study.report_csv import write_csvs
    from pargs.study.report_figures import figures

    folder = Path(folder)
    fd = analyse(load(folder / EVIDENCE), alpha)
    table = claims_table(fd)
    (folder / "claims.md").write_text("\n".join(table) + "\n")
    paths = {"markdown": str(folder / "study.md"), "claims": str(folder / "claims.md")}
    paths.update(write_csvs(fd, folder))
    paths.update(figures(fd, folder))
    (folder / "study.md").write_text("\n".join(study_markdown(fd, table)) + "\n")
    for name, path in paths.items():
        log.info("study report %s: %s", name, path)
    return {"paths": paths, "claims_table": "\n".join(table), "findings": fd}


def write_report(out: Path, seeds: list[int], ablation_seeds: list[int], plan, alpha: float = ALPHA) -> dict:
    """Gather the study's evidence from its seed directories into ``<out>/report/evidence``, then compute and write
    the report from it alone (:func:`report_from_evidence`)."""
    from pargs.report import build_report
    from pargs.study.evidence_files import gather, save

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
    save(gather(out, seeds, ablation_seeds, plan), folder / EVIDENCE)
    return report_from_evidence(folder, alpha)


def report_folder(path: Path) -> Path:
    """The report folder of ``path``: ``path`` itself when it holds ``evidence/``, else ``path/report`` (a study's
    ``--out``); a ConfigError when neither does."""
    path = Path(path)
    for folder in (path, path / "report"):
        if (folder / EVIDENCE / "manifest.json").is_file():
            return folder
    raise ConfigError(
        f"{path}: no study evidence there ({path / EVIDENCE} or {path / 'report' / EVIDENCE}); give a study's --out or "
        "its report folder, written by a pargs study that saves its evidence"
    )


def recompute(path: Path, alpha: float = ALPHA) -> dict:
    """``pargs study --recompute DIR``: rebuild every table and verdict of the report from its evidence files alone."""
    return report_from_evidence(report_folder(path), alpha)
