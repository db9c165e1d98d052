"""Everything a study measured, read back from its seed directories, and the paper's claims tested on it.

The numbers come from the files the steps wrote (``predictions/test``, ``predictions/ablation_decode``,
``tuning.json``, ``ground_truth.json``, ``decisions.csv.gz``, ``steps/*.json``); the tests and the verdict rule
are :mod:`pargs.metrics.claims`.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from pargs.metrics.claims import ALPHA, Claim, combine, compare_methods, signed_rank_exact, verdict
from pargs.metrics.ground_truth_agreement import PairOutcome, compare_rms, summarize
from pargs.metrics.significance import McNemarTest, pooled_mcnemar
from pargs.study import decisions
from pargs.study.grids import FIXED_BETA, GUIDED, beta_name

#: the paper's claims as paired comparisons of test rows: (A, B, kind, the paper's statement in our words).
#: ``best-of-n`` stands for the study's Best-of-N row.
METHOD_CLAIMS = (
    (
        "pargs",
        "args-sampled",
        "better",
        "A partial-sequence RM guides decoding better than a full-sequence RM (compared here with the same sampling "
        "rule, so only the RM differs)",
    ),
    ("pargs-g", "args", "better", "PARGS-G beats ARGS (both greedy: only the RM differs)"),
    ("pargs", "top-k", "better", "Reward guidance raises the reward over sampling from the reference model"),
    ("pargs", "cd-fudge", "better", "PARGS outperforms the earlier tokenwise method CD-FUDGE (a prefix value model)"),
    ("pargs", "best-of-n", "not_worse", "PARGS performs similarly to Best-of-N (read: not worse by more than δ)"),
    (
        "pargs",
        "dpo",
        "not_worse",
        "PARGS performs similarly to DPO without fine-tuning the LM (read: not worse by more than δ)",
    ),
    (
        "pargs",
        "ppo",
        "not_worse",
        "PARGS performs similarly to PPO without fine-tuning the LM (read: not worse by more than δ)",
    ),
)
#: delta of the "performs similarly" claims, in oracle reward units: PARGS counts as similar to B when it is not
#: worse by more than this (a non-inferiority test, pargs/metrics/claims.py). Declared before the 5-seed study:
#: about 0.2 of the per-prompt standard deviation of a sampled method's reward (0.71-1.23 for top-k, Best-of-10,
#: PARGS, CD-FUDGE, DPO and PPO on a first real-size seed), a small effect in Cohen's sense, and about twice the
#: SE of one method's mean on 120 test prompts.
SIMILAR_MARGIN = 0.2
THEOREM1 = (
    "Theorem 1: a full-sequence RM is not fit to score partial sequences, a partial-sequence RM is; so the "
    "partial RM agrees with the ground truth on prefixes more often than the full RM"
)
LABELS = {
    "pargs": "PARGS",
    "pargs-g": "PARGS-G",
    "args": "ARGS",
    "args-sampled": "ARGS-sampled",
    "top-k": "top-k",
    "cd-fudge": "CD-FUDGE",
    "dpo": "DPO",
    "ppo": "PPO",
    "greedy": "greedy",
    "rm_partial": "partial RM",
    "rm_full": "full RM",
}


def label(method: str) -> str:
    """A row's name for people: ``PARGS (β = 1.5)`` for ``pargs@b1.5``, ``Best-of-10`` for ``best-of-10``."""
    base, _, beta = method.partition("@b")
    text = LABELS.get(base, base.replace("best-of-", "Best-of-"))
    return f"{text} (β = {beta})" if beta else text


@dataclass
class Evidence:
    """A study's measurements, per seed."""

    seeds: list[int]
    rewards: dict[str, dict[int, dict[str, float]]]  #: test method -> seed -> prompt id -> mean oracle reward
    samples: dict[str, int]  #: test method -> samples per prompt
    prompts: dict[str, int]  #: test method -> prompts
    texts: dict[str, dict[int, dict[str, list[str]]]]  #: test method -> seed -> prompt id -> responses
    timing: dict[str, dict[int, float]]  #: test method -> seed -> ms per generated token
    tuning: dict[int, dict]  #: seed -> tuning.json
    outcomes: dict[int, dict[str, list[PairOutcome]]]  #: seed -> RM name -> ground-truth outcomes
    gt_meta: dict[int, dict]  #: seed -> the ground truth's m, pairs and mean SE per fraction
    ablation: dict[str, dict[int, float]]  #: ablation method -> seed -> mean oracle reward
    ablation_prompts: dict[str, int] = field(default_factory=dict)
    records: dict[int, dict[str, dict]] = field(default_factory=dict)  #: seed -> step -> step record
    #: seed -> the candidate rows of its decisions.csv.gz (pargs/study/decisions.py); seeds without the file left out
    decisions: dict[int, list[dict]] = field(default_factory=dict)
    best_of_n: str = "best-of-10"


def _predictions(folder: Path) -> list[dict]:
    from pargs.report import load_predictions

    records, _ = load_predictions([folder])
    return records


def _per_method(records: list[dict]):
    rewards: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    texts: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    timing: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for r in records:
        rewards[r["method"]][r["id"]].append(r["reward"])
        texts[r["method"]][r["id"]].append(r["response"])
        timing[r["method"]][0] += r["decode_seconds"]
        timing[r["method"]][1] += r["tokens"]
    means = {m: {k: sum(v) / len(v) for k, v in by.items()} for m, by in rewards.items()}
    ms = {m: 1000 * s / t if t else math.nan for m, (s, t) in timing.items()}
    return means, texts, ms


def collect(out: Path, seeds: list[int], ablation_seeds: list[int]) -> Evidence:
    """Read every seed's results (the seeds must have finished their main steps)."""
    ev = Evidence(seeds, defaultdict(dict), {}, {}, defaultdict(dict), defaultdict(dict), {}, {}, {}, defaultdict(dict))
    for s in seeds:
        d = Path(out) / f"seed-{s}"
        means, texts, ms = _per_method(_predictions(d / "predictions" / "test"))
        for m in means:
            ev.rewards[m][s] = means[m]
            ev.texts[m][s] = dict(texts[m])
            ev.timing[m][s] = ms[m]
            ev.samples[m] = max(len(v) for v in texts[m].values())
            ev.prompts[m] = len(means[m])
        ev.best_of_n = next((m for m in means if m.startswith("best-of-")), ev.best_of_n)
        ev.tuning[s] = json.loads((d / "tuning.json").read_text())
        gt = json.loads((d / "ground_truth.json").read_text())
        ev.outcomes[s] = {name: [PairOutcome(**o) for o in rows] for name, rows in gt["outcomes"].items()}
        comps = gt["ground_truth"]["comparisons"]
        ses = defaultdict(list)
        for c in comps:
            for side in ("chosen", "rejected"):
                if c[side]["n"]:
                    ses[c["fraction"]].append(c[side]["se"])
        ev.gt_meta[s] = {
            "m": gt["ground_truth"]["m"],
            "pairs": len({c["pair_id"] for c in comps}),
            "mean_se": {f: sum(v) / len(v) for f, v in ses.items()},
        }
        ev.records[s] = {p.stem: json.loads(p.read_text()) for p in sorted((d / "steps").glob("*.json"))}
        if (d / decisions.FILE).is_file():
            ev.decisions[s] = decisions.read_rows(d / decisions.FILE)
    for s in ablation_seeds:
        folder = Path(out) / f"seed-{s}" / "predictions" / "ablation_decode"
        if not folder.is_dir():
            continue
        means, _, _ = _per_method(_predictions(folder))
        for m, per in means.items():
            ev.ablation[m][s] = sum(per.values()) / len(per)
            ev.ablation_prompts[m] = len(per)
    return ev


# ---------------------------------------------------------------------------- claims on decoding methods
@dataclass
class MethodClaim:
    """One of :data:`METHOD_CLAIMS` in one view (``tuned`` betas, or the paper's fixed beta)."""

    view: str  #: "tuned β" or "β = 1.5"
    a: str  #: test row of A
    b: str  #: test row of B
    statement: str
    claim: Claim


def method_claims(ev: Evidence, alpha: float = ALPHA) -> list[MethodClaim]:
    """Every method claim in both views (the fixed-beta view swaps each guided row for its β = 1.5 row)."""
    out = []
    for view in ("tuned β", f"β = {FIXED_BETA:g}"):
        for a, b, kind, statement in METHOD_CLAIMS:
            b = ev.best_of_n if b == "best-of-n" else b
            if view != "tuned β":
                a, b = (beta_name(x, FIXED_BETA) if x in GUIDED else x for x in (a, b))
            if a not in ev.rewards or b not in ev.rewards:
                continue
            name = f"{label(a)} vs {label(b)}"
            claim = compare_methods(name, kind, ev.rewards[a], ev.rewards[b], alpha, SIMILAR_MARGIN)
            out.append(MethodClaim(view, a, b, statement, claim))
    return out


def decision_claims(ev: Evidence, alpha: float = ALPHA) -> list[MethodClaim]:
    """The decision-level claim (:func:`pargs.study.decisions.decision_claim`) as a row of the claims table, after
    the method claims; none when the study has no decision files."""
    claim = decisions.decision_claim(ev.decisions, alpha) if ev.decisions.keys() == set(ev.seeds) else None
    if claim is None:
        return []
    return [MethodClaim(decisions.CLAIM_VIEW, "rm_partial", "rm_full", decisions.STATEMENT, claim)]


# ---------------------------------------------------------------------------- Theorem 1
@dataclass
class FractionTest:
    """The partial vs the full RM at one fraction of the response, against one reference."""

    fraction: float
    against: str  #: "truth" (the Monte Carlo ground truth) or "label"
    slice: str  #: "all" or "contrast" (pairs with a "but"-contrast response)
    per_seed_for: list[McNemarTest]  #: H1: the partial RM is right more often
    per_seed_against: list[McNemarTest]  #: H1: the full RM is right more often
    per_seed_diff: list[float]  #: per seed: the partial RM's share right minus the full RM's
    across_for: float  #: exact signed-rank across seeds of per_seed_diff, H1: the partial RM is right more often
    across_against: float  #: the same, H1: the full RM is right more often
    pooled_for: McNemarTest  #: McNemar on the discordant pairs of every seed pooled (pairs as the unit)
    pooled_against: McNemarTest
    partial: float  #: share of pairs the partial RM gets right, pooled over seeds (RM ties count one half)
    full: float
    n: int  #: pairs counted (pooled)
    verdict: str


@dataclass
class Theorem1:
    tests: list[FractionTest]
    verdict: str  #: combined over the fractions below 100 % of the truth view, all pairs
    fractions: list[float]


def agreement_rate(outcomes: list[PairOutcome], against: str) -> tuple[float, int]:
    """The share of ``outcomes`` that agree with ``against`` ("truth" or "label"; NaN ones left out), and their
    number."""
    vals = [getattr(o, against) for o in outcomes]
    vals = [v for v in vals if not math.isnan(v)]
    return (sum(vals) / len(vals) if vals else math.nan), len(vals)


def theorem1(ev: Evidence, alpha: float = ALPHA) -> Theorem1:
    """Per fraction, per reference (ground truth, label) and slice (all, "but"-contrast): per-seed McNemar tests
    of the partial vs the full RM, the exact signed-rank test across seeds of the per-seed differences in the
    share of pairs right (seeds as the unit, like the method claims), and a verdict by
    :func:`pargs.metrics.claims.verdict` from those. The McNemar test on the pairs pooled over seeds is reported
    next to them; it does not decide the verdict, since one seed's many pairs can drive it."""
    fractions = sorted({o.fraction for s in ev.seeds for o in ev.outcomes[s]["rm_partial"]})
    tests = []
    for against in ("truth", "label"):
        for part in ("all", "contrast"):
            for f in fractions:
                fors, agsts, partial, full, diffs = [], [], [], [], []
                for s in ev.seeds:
                    p_out, f_out = ev.outcomes[s]["rm_partial"], ev.outcomes[s]["rm_full"]
                    if part == "contrast":
                        p_out = [o for o in p_out if o.contrast]
                        f_out = [o for o in f_out if o.contrast]
                    fors.append(
                        compare_rms(
                            p_out, f_out, f, against, alternative="greater", a_name="partial RM", b_name="full RM"
                        )
                    )
                    agsts.append(
                        compare_rms(p_out, f_out, f, against, alternative="less", a_name="partial RM", b_name="full RM")
                    )
                    seed_p = [o for o in p_out if o.fraction == f]
                    seed_f = [o for o in f_out if o.fraction == f]
                    diffs.append(agreement_rate(seed_p, against)[0] - agreement_rate(seed_f, against)[0])
                    partial += seed_p
                    full += seed_f
                pooled_for = pooled_mcnemar(fors, "greater", "partial RM", "full RM")
                pooled_against = pooled_mcnemar(agsts, "less", "partial RM", "full RM")
                (rate_p, n), (rate_f, _) = agreement_rate(partial, against), agreement_rate(full, against)
                across_for, across_against = signed_rank_exact(diffs, "greater"), signed_rank_exact(diffs, "less")
                v = verdict([t.p_value for t in fors], [t.p_value for t in agsts], across_for, across_against, alpha)
                tests.append(
                    FractionTest(
                        f,
                        against,
                        part,
                        fors,
                        agsts,
                        diffs,
                        across_for,
                        across_against,
                        pooled_for,
                        pooled_against,
                        rate_p,
                        rate_f,
                        n,
                        v,
                    )
                )
    parts = [t.verdict for t in tests if t.against == "truth" and t.slice == "all" and t.fraction < 1]
    return Theorem1(tests, combine(parts), fractions)


def pooled_summary(ev: Evidence, rm: str):
    """:func:`pargs.metrics.ground_truth_agreement.summarize` of one RM's outcomes pooled over seeds."""
    return summarize([o for s in ev.seeds for o in ev.outcomes[s][rm]])
