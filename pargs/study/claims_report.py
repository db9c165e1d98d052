"""The claims part of the study's report: the "Paper claims vs what the embedded study shows" table, the rule
that decided its verdicts, each claim seed by seed, and Theorem 1's table. Formatting only: every number and
verdict comes from :class:`pargs.study.evidence.Findings`."""

from __future__ import annotations

from collections import defaultdict

from pargs.metrics.claims import AGAINST, SUPPORTED, Decision, smallest_p
from pargs.metrics.seed_power import MAX_SEEDS, POWER
from pargs.study import numbers as fmt
from pargs.study.evidence import SIMILAR_MARGIN, THEOREM1, THEOREM1_NAME, Findings, label, pooled_summary
from pargs.study.report_runs import environment_line, wall_time_line

POWER_TEXT = f"{round(POWER * 100)} %"  #: the target power in the report's words


def verdict_text(d: Decision) -> str:
    """The verdict, with the one the claim would have on its own beside it where the fixed sequence changed it."""
    return d.verdict + (f" (on its own: {d.alone})" if d.alone != d.verdict else "")


def needed_text(d: Decision) -> str:
    """Seeds for 80 % power of an undecided claim ("–" for a decided one)."""
    n = d.needed
    if n is None:
        return "–"
    if n.direction == "none":
        return "no effect to plan with"
    if n.seeds is None:
        return f"more than {MAX_SEEDS}"
    return f"{n.seeds} to support it" if n.direction == "for" else f"{n.seeds} for evidence against it"


def p_text(d: Decision, relation: str) -> str:
    """The claim's raw across-seed p, and its adjusted p for a primary claim (fixed sequence)."""
    raw = f"p({relation}) = {fmt.p(d.across_for)}"
    return raw + (f", adjusted {fmt.p(d.adjusted_for)}" if d.primary else "")


def primary_text(d: Decision) -> str:
    """`` (primary, 2nd of the fixed sequence)`` for a primary claim, "" for a secondary one."""
    if not d.primary:
        return ""
    nth = {1: "1st", 2: "2nd", 3: "3rd"}.get(d.position, f"{d.position}th")
    return f" (primary, {nth} of the fixed sequence)"


def _count_positive(diffs: list[float]) -> str:
    return f"{sum(d > 0 for d in diffs)}/{len(diffs)}"


def _relation(claim) -> str:
    """The claim's hypothesis in the table's words: ``A > B``, or ``A > B − 0.2`` for a margin of 0.2."""
    return f"A > B − {claim.margin:g}" if claim.margin else "A > B"


def _method_row(fd: Findings, views: list) -> str:
    """One row of the claims table: a method claim in each of its views."""
    numbers, ps, verdicts, needed = [], [], [], []
    for c in views:
        d = fd.verdicts[c.claim.name]
        mean, se = c.claim.diff_mean_se
        zeros = f"; seeds with a zero difference: {d.zeros}" if d.zeros else ""
        view = c.view + primary_text(d)
        numbers.append(
            f"{view}: {fmt.f(mean, sign=True)} ± {fmt.f(se)}; {_count_positive([x.diff for x in c.claim.seeds])}; "
            f"seeds significantly for / against {_relation(c.claim)}: {d.seeds_for} / {d.seeds_against}{zeros}"
        )
        ps.append(f"{c.view}: {p_text(d, _relation(c.claim))}")
        verdicts.append(f"{verdict_text(d)} ({c.view})" if len(views) > 1 else verdict_text(d))
        needed.append(f"{needed_text(d)} ({c.view})" if len(views) > 1 else needed_text(d))
    note = _claim_note(fd, views[0].b.split("@b")[0])
    a, b = (x.split("@b")[0] for x in (views[0].a, views[0].b))
    shows = "<br>".join(numbers) + (f"<br>{note}" if note else "")
    cells = [f"{label(a)} vs {label(b)}", views[0].statement, shows, *("<br>".join(x) for x in (ps, verdicts, needed))]
    return "| " + " | ".join(cells) + " |"


def _theorem1_row(fd: Findings) -> str:
    t1, s = fd.theorem1, len(fd.ev.seeds)
    truth = [t for t in t1.tests if t.against == "truth" and t.slice == "all"]
    label_view = {t.fraction: t for t in t1.tests if t.against == "label" and t.slice == "all"}
    contrast = {t.fraction: t for t in t1.tests if t.against == "truth" and t.slice == "contrast"}
    parts = []
    for t in truth:
        lv, cv = label_view[t.fraction], contrast[t.fraction]
        parts.append(
            f"{round(t.fraction * 100)} %: {fmt.f(t.partial)} vs {fmt.f(t.full)} (n = {t.n}; seeds with partial > "
            f"full {_count_positive(t.per_seed_diff)}, across-seed p = {fmt.p(t.across_for)}; pooled McNemar "
            f"p = {fmt.p(t.pooled_for.p_value)}; alone: {fd.verdicts[t.claim.name].verdict}; vs label "
            f'{fmt.f(lv.partial)} vs {fmt.f(lv.full)}; "but"-contrast pairs {fmt.f(cv.partial)} vs {fmt.f(cv.full)}, '
            f"n = {cv.n})"
        )
    d = fd.verdicts[THEOREM1_NAME]
    below = [round(f * 100) for f in t1.fractions if f < 1]
    cuts = f"{below[0]}–{below[-1]}" if below else "–"
    shows = (
        f"agreement with the Monte Carlo ground truth, partial vs full RM, pooled over {s} seeds{primary_text(d)}:<br>"
        + "<br>".join(parts)
    )
    p = f"every cut of {cuts} %: {p_text(d, 'partial > full')}"
    return f"| {THEOREM1_NAME} | {THEOREM1} | {shows} | {p} | {verdict_text(d)} ({cuts} %) | {needed_text(d)} |"


def claims_table(fd: Findings) -> list[str]:
    """The "Paper claims vs what the embedded study shows" table, the rule under it and how the study ran."""
    lines = [
        "| claim | the paper | what the study shows (A − B, mean ± SE over seeds; seeds with A > B; seeds "
        "significant on their own) | across-seed p of the claim (raw; adjusted by the fixed sequence for a primary "
        "claim) | verdict | "
        f"seeds for {POWER_TEXT} power |",
        "|---|---|---|---|---|---|",
    ]
    by_pair: dict[tuple, list] = defaultdict(list)
    for c in fd.claims:
        by_pair[tuple(x.split("@b")[0] for x in (c.a, c.b))].append(c)
    lines += [_method_row(fd, views) for views in by_pair.values()]
    lines.append(_theorem1_row(fd))
    return [*lines, "", rule_text(fd), "", environment_line(fd.ev), "", wall_time_line(fd.ev)]


def _claim_note(fd: Findings, b: str) -> str:
    ev = fd.ev
    if b not in ("dpo", "ppo"):
        return ""
    beats = [s for s in ev.seeds if ev.tuning[s][b]["beats_initial_policy"]]
    if len(beats) == len(ev.seeds):
        return f"{label(b)} beat its initial policy on the validation prompts in every seed."
    return (
        f"{label(b)} beat its initial policy (the SFT model, top-k) on the validation prompts in "
        f"{len(beats)} of {len(ev.seeds)} seeds: see Tuning for the grid."
    )


# one paragraph of text, which is long
def rule_text(fd: Findings) -> str:
    """How the verdicts were decided, in words (pargs/metrics/claims.py has the rule)."""
    s, alpha = len(fd.ev.seeds), fd.alpha
    sequence = sorted((d for d in fd.verdicts.values() if d.primary), key=lambda d: d.position)
    names = ", ".join(f"({d.position}) {d.name}" for d in sequence)
    return (
        f"Verdicts are computed (pargs/metrics/claims.py), α = {alpha:g}. A claim is *supported* when the "
        "across-seed test finds it and no seed's own test finds the opposite; *evidence against* when the "
        "across-seed test finds the opposite and no seed's own test finds the claim; *no evidence* when neither "
        "the across-seed test nor any seed finds the claim; *mixed* otherwise; *inconclusive: S seeds* when the "
        'across-seed test cannot reach α with S seeds whatever the data. A claim "A performs similarly to B" is '
        f'read as "A is not worse than B by more than δ = {SIMILAR_MARGIN:g}" (non-inferiority) and decided by the '
        "same rule on A + δ vs B, so it needs evidence that the gap is within δ, not just the absence of a "
        "significant deficit. Per seed: one-sided Wilcoxon signed-rank tests paired by test prompt (RMs on "
        "prefixes: McNemar's exact test paired by preference pair; RMs on a decoding step's candidates: "
        "Wilcoxon paired by decoding state). Across seeds: the exact one-sided Wilcoxon signed-rank test on "
        f"the {s} per-seed differences, whose smallest attainable p is 1/2^{s} = {smallest_p(s):.4g} (reached only "
        "when every seed agrees). Zero differences, per seed and across seeds, are ranked with the others but count "
        "for neither side (Pratt's method); their number is reported. Primary claims, declared in "
        f"pargs/study/evidence.py before the run, are tested in a fixed sequence: {names}, the paper's argument "
        "from premise to outcome. Each is tested at the full α only if every earlier one was supported; once one "
        "is not, the later ones read *not tested* (their raw numbers are shown; with too few seeds for any claim to "
        "reach α, all read *inconclusive*). The adjusted p of the i-th is the "
        "largest raw p of claims 1..i. This bounds the chance of any false *supported* among them by α whatever "
        "their dependence (they share seeds and models): a false one needs the sequence to reach the first claim "
        "that does not hold and to pass its single test at α. Not Holm: its first step needs p ≤ α/m (0.025 for two "
        "claims, 0.0167 for three), below the exact test's floor of 1/32 = 0.031 at 5 seeds, so no primary claim "
        "could be supported at 5 seeds whatever the data. Every other claim is secondary, tested at α on its own. "
        "Theorem 1 combines 25, 50 and 75 % of the response: its p for the claim is the largest of the three (every "
        f"cut must hold), its p against the smallest times three. Seeds for {POWER_TEXT} power, for a claim not "
        f"decided: the fewest seeds at which the exact across-seed test reaches {POWER_TEXT} power at α if the "
        "per-seed differences were normal with the observed mean and spread (simulated, "
        "pargs/metrics/seed_power.py)."
    )


def claim_details(fd: Findings) -> list[str]:
    """Each method claim seed by seed."""
    lines = []
    for c in fd.claims:
        cl, d = c.claim, fd.verdicts[c.claim.name]
        mean, se = cl.diff_mean_se
        rel = _relation(cl)
        lines += [
            f"### {cl.name} ({c.view}){primary_text(d)}: {verdict_text(d)}",
            "",
            f"| seed | A | B | A − B | prompts | zero differences | p ({rel}) | p (not {rel}) |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for x in cl.seeds:
            lines.append(
                f"| {x.seed} | {fmt.f(x.a)} | {fmt.f(x.b)} | {fmt.f(x.diff, sign=True)} | {x.n_prompts} | "
                f"{x.zeros} | {fmt.p(x.p_for)} | {fmt.p(x.p_against)} |"
            )
        adjusted = f" (adjusted: {fmt.p(d.adjusted_for)} and {fmt.p(d.adjusted_against)})" if d.primary else ""
        kind = "A beats B" if cl.kind == "better" else f"A is not worse than B by more than {cl.margin:g}"
        decided = d.verdict in (SUPPORTED, AGAINST)
        lines += [
            "",
            f"A − B over seeds: {fmt.f(mean, sign=True)} ± {fmt.f(se)}; exact signed-rank across seeds: "
            f"p({rel}) = {fmt.p(cl.across_for)}, p(the opposite) = {fmt.p(cl.across_against)}{adjusted}. Claim kind: "
            f"{kind}." + ("" if decided else f" Seeds for {POWER_TEXT} power: {needed_text(d)}."),
            "",
        ]
    return lines


def theorem1_section(fd: Findings) -> list[str]:
    """Theorem 1's table (every reference, slice and fraction) and how its ground truth was made."""
    t1 = fd.theorem1
    lines = [
        "| reference | pairs | prefix | partial RM | full RM | n | per-seed p (partial > full) | across-seed p "
        "(partial > full) | across-seed p (partial < full) | pooled p (partial > full) | verdict (alone) |",
        "|---|---|---:|---:|---:|---:|---|---:|---:|---:|---|",
    ]
    for t in t1.tests:
        per = ", ".join(fmt.p(x.p_value) for x in t.per_seed_for)
        ref = "ground truth" if t.against == "truth" else "label"
        part = "all" if t.slice == "all" else '"but"-contrast'
        lines.append(
            f"| {ref} | {part} | {round(t.fraction * 100)} % | {fmt.f(t.partial)} | {fmt.f(t.full)} | {t.n} | {per} "
            f"| {fmt.p(t.across_for)} | {fmt.p(t.across_against)} | {fmt.p(t.pooled_for.p_value)} | "
            f"{fd.verdicts[t.claim.name].verdict} |"
        )
    return lines + ["", *_ground_truth_notes(fd)]


def _ground_truth_notes(fd: Findings) -> list[str]:
    ev = fd.ev
    meta = [ev.gt_meta[s] for s in ev.seeds]
    ses = defaultdict(list)
    for m in meta:
        for f, v in m["mean_se"].items():
            ses[float(f)].append(v)
    se_text = ", ".join(f"{round(f * 100)} %: {sum(v) / len(v):.3f}" for f, v in sorted(ses.items()))
    d = fd.verdicts[THEOREM1_NAME]
    lines = [
        f"Theorem 1 as one claim{primary_text(d)} (the ground truth rows, all pairs, below 100 %): "
        f"{verdict_text(d)}; p = {fmt.p(d.across_for)}"
        + (f", adjusted {fmt.p(d.adjusted_for)}" if d.primary else "")
        + f'. The rows\' own verdicts ("alone") are secondary, each at α = {fd.alpha:g}.',
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
                f"{round(f * 100)} %: label {fmt.f(x.label)}, ground truth {fmt.f(x.truth)} (n = {x.n_truth}), "
                f"|z| > 2 {fmt.f(x.truth_confident)} (n = {x.n_confident})"
                for f, x in summary.items()
            )
        )
    return lines
