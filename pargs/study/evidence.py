"""Everything a study measured, and the paper's claims tested on it.

The numbers come from the study's evidence files (:mod:`pargs.study.evidence_files`), which the study gathers
from the files its steps wrote (``predictions/test``, ``predictions/ablation_decode``, ``tuning.json``,
``ground_truth.json``, ``decisions.csv.gz``, ``steps/*.json``); the tests and the verdict rule are
:mod:`pargs.metrics.claims`.

**Primary claims**, declared here before any run: the claims that answer the paper's central question, whether
a partial-sequence RM guides decoding better than a full-sequence RM, in the tuned view (every method at the
beta it chose on the validation prompts, so no method is held to a beta that suits another's reward scale):
Theorem 1 (the partial RM orders prefixes as the ground truth does, at 25, 50 and 75 % of the response), the
decision-level claim (it ranks the candidates of one decoding step better, :mod:`pargs.study.decisions`) and
PARGS vs ARGS-sampled (only the RM differs). They are tested by the fixed-sequence procedure
(:func:`pargs.metrics.claims.decide`, whose docstring says why it and not Holm), in the order of
:data:`PRIMARY_SEQUENCE`, which follows the paper's argument from its premise to its outcome; every other claim,
view and slice is secondary: tested at alpha alone and reported as a description.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from pargs.metrics.claims import ALPHA, AllOf, Claim, Decision, SeedComparison, compare_methods, decide, from_seeds
from pargs.metrics.ground_truth_agreement import PairOutcome, compare_rms, summarize
from pargs.metrics.significance import McNemarTest, pooled_mcnemar
from pargs.study import decisions
from pargs.study.grids import FIXED_BETA, GUIDED, beta_name

#: the view whose claims can be primary (module docstring); the fixed-beta view is secondary
PRIMARY_VIEW = "tuned β"
#: the paper's claims as paired comparisons of test rows: (A, B, kind, the paper's statement in our words).
#: ``best-of-n`` stands for the study's Best-of-N row. Only PARGS vs ARGS-sampled in the tuned view is primary
#: among them (:data:`PRIMARY_SEQUENCE`): it is the decoding half of the central question. PARGS-G vs ARGS asks the
#: same with greedy decoding (secondary, so that one question does not enter the family twice); the others compare
#: PARGS with other kinds of methods.
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
    (
        "pargs",
        "cd-fudge",
        "better",
        "PARGS outperforms the earlier tokenwise method CD-FUDGE (a prefix value model)",
    ),
    (
        "pargs",
        "best-of-n",
        "not_worse",
        "PARGS performs similarly to Best-of-N (read: not worse by more than δ)",
    ),
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
THEOREM1_NAME = "Partial vs full RM on prefixes"  #: the claim's name in the claims table
#: the primary claims, by name, in the order the fixed-sequence procedure tests them (pargs/metrics/claims.py),
#: declared before any run. The order is the paper's argument from premise to outcome: (1) Theorem 1, the partial
#: RM orders prefixes as the ground truth does; (2) the decision-level claim, so it ranks the candidates of one
#: decoding step better than the full RM; (3) PARGS vs ARGS-sampled in the tuned view, so decoding gains. Each is
#: tested at the full alpha only if every earlier one was supported.
PRIMARY_SEQUENCE = (THEOREM1_NAME, decisions.NAME, "PARGS vs ARGS-sampled")
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
    """A study's measurements, per seed (built by :func:`pargs.study.evidence_files.to_evidence`)."""

    seeds: list[int]
    rewards: dict[str, dict[int, dict[str, float]]]  #: test method -> seed -> prompt id -> mean oracle reward
    samples: dict[str, int]  #: test method -> samples per prompt
    prompts: dict[str, int]  #: test method -> prompts
    diversity: dict[str, dict[int, dict[str, float]]]  #: test method -> seed -> prompt id -> self-ROUGE-L
    timing: dict[str, dict[int, float]]  #: test method -> seed -> ms per generated token
    tuning: dict[int, dict]  #: seed -> tuning.json
    outcomes: dict[int, dict[str, list[PairOutcome]]]  #: seed -> RM name -> ground-truth outcomes
    gt_meta: dict[int, dict]  #: seed -> the ground truth's m, pairs and mean SE per fraction
    ablation: dict[str, dict[int, float]]  #: ablation method -> seed -> mean oracle reward
    ablation_prompts: dict[str, int] = field(default_factory=dict)
    #: seed -> step -> its record's seconds, load_average, cpu_count and environment (pargs/study/ledger.py)
    records: dict[int, dict[str, dict]] = field(default_factory=dict)
    #: seed -> the candidate rows of its decisions.csv.gz (pargs/study/decisions.py); seeds without the file left out
    decisions: dict[int, list[dict]] = field(default_factory=dict)
    best_of_n: str = "best-of-10"
    budget: dict = field(default_factory=dict)  #: what the models were trained on (evidence_files.training_budget)
    plan: object = None  #: the study's pargs.study.plan.StudyPlan
    ablation_seeds: list[int] = field(default_factory=list)
    prefix_values: dict[int, list[dict]] = field(default_factory=dict)  #: seed -> prefix_values.csv.gz rows


#: test rows in table order (the Best-of-N row and the beta = 1.5 rows are placed by :func:`method_order`)
ORDER = ("greedy", "top-k", "best-of-n", "args", "args-sampled", "pargs-g", "pargs", "cd-fudge", "dpo", "ppo")


def method_order(ev: Evidence) -> list[str]:
    """The test rows in table order: :data:`ORDER`, then the beta = 1.5 rows, then any other row by name."""
    names = [ev.best_of_n if m == "best-of-n" else m for m in ORDER]
    rows = [m for m in names if m in ev.rewards]
    rows += [beta_name(g, FIXED_BETA) for g in GUIDED if beta_name(g, FIXED_BETA) in ev.rewards]
    return rows + sorted(m for m in ev.rewards if m not in rows)


def seed_means(ev: Evidence, method: str) -> dict[int, float]:
    """Per seed: the method's mean over test prompts of the per-prompt mean oracle reward."""
    return {s: sum(v.values()) / len(v) for s, v in ev.rewards[method].items()}


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
    for view in (PRIMARY_VIEW, f"β = {FIXED_BETA:g}"):
        for a, b, kind, statement in METHOD_CLAIMS:
            b = ev.best_of_n if b == "best-of-n" else b
            if view != PRIMARY_VIEW:
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
    pooled_for: McNemarTest  #: McNemar on the discordant pairs of every seed pooled (pairs as the unit)
    pooled_against: McNemarTest
    partial: float  #: share of pairs the partial RM gets right, pooled over seeds (RM ties count one half)
    full: float
    n: int  #: pairs counted (pooled)
    claim: Claim  #: per seed the two RMs' shares right and McNemar's p-values; across seeds the signed-rank test

    @property
    def per_seed_diff(self) -> list[float]:
        """Per seed: the partial RM's share right minus the full RM's."""
        return [s.diff for s in self.claim.seeds]

    @property
    def across_for(self) -> float:
        return self.claim.across_for

    @property
    def across_against(self) -> float:
        return self.claim.across_against

    @property
    def verdict(self) -> str:
        """As a secondary claim, at alpha alone."""
        return self.claim.verdict


@dataclass
class Theorem1:
    tests: list[FractionTest]
    claim: AllOf  #: the theorem as one claim: the truth view, all pairs, every fraction below 100 %
    fractions: list[float]


def agreement_rate(outcomes: list[PairOutcome], against: str) -> tuple[float, int]:
    """The share of ``outcomes`` that agree with ``against`` ("truth" or "label"; NaN ones left out), and their
    number."""
    vals = [getattr(o, against) for o in outcomes]
    vals = [v for v in vals if not math.isnan(v)]
    return (sum(vals) / len(vals) if vals else math.nan), len(vals)


def _fraction_test(ev: Evidence, fraction: float, against: str, part: str, alpha: float) -> FractionTest:
    """One row of :func:`theorem1`: per seed McNemar's tests both ways and the shares right; pooled over seeds."""
    fors, agsts, seeds, partial, full = [], [], [], [], []
    names = {"a_name": "partial RM", "b_name": "full RM"}
    for s in ev.seeds:
        p_out, f_out = ev.outcomes[s]["rm_partial"], ev.outcomes[s]["rm_full"]
        if part == "contrast":
            p_out, f_out = [o for o in p_out if o.contrast], [o for o in f_out if o.contrast]
        fors.append(compare_rms(p_out, f_out, fraction, against, alternative="greater", **names))
        agsts.append(compare_rms(p_out, f_out, fraction, against, alternative="less", **names))
        seed_p = [o for o in p_out if o.fraction == fraction]
        seed_f = [o for o in f_out if o.fraction == fraction]
        rate_p, rate_f = agreement_rate(seed_p, against)[0], agreement_rate(seed_f, against)[0]
        seeds.append(SeedComparison(s, rate_p, rate_f, fors[-1].p_value, agsts[-1].p_value, fors[-1].n_items))
        partial += seed_p
        full += seed_f
    reference = "ground truth" if against == "truth" else "label"
    name = f"Theorem 1 at {round(fraction * 100)} % ({reference}, {'all pairs' if part == 'all' else part})"
    (rate_p, n), (rate_f, _) = agreement_rate(partial, against), agreement_rate(full, against)
    return FractionTest(
        fraction,
        against,
        part,
        fors,
        agsts,
        pooled_mcnemar(fors, "greater", "partial RM", "full RM"),
        pooled_mcnemar(agsts, "less", "partial RM", "full RM"),
        rate_p,
        rate_f,
        n,
        from_seeds(name, "better", seeds, alpha),
    )


def theorem1(ev: Evidence, alpha: float = ALPHA) -> Theorem1:
    """Per fraction, per reference (ground truth, label) and slice (all, "but"-contrast): per-seed McNemar tests
    of the partial vs the full RM, the exact signed-rank test across seeds of the per-seed differences in the
    share of pairs right (seeds as the unit, like the method claims), each a secondary claim; and the theorem as
    one claim made of the ground-truth rows of every fraction below 100 % (:class:`pargs.metrics.claims.AllOf`).
    The McNemar test on the pairs pooled over seeds is reported next to them; it does not decide a verdict, since
    one seed's many pairs can drive it."""
    fractions = sorted({o.fraction for s in ev.seeds for o in ev.outcomes[s]["rm_partial"]})
    tests = [
        _fraction_test(ev, f, against, part, alpha)
        for against in ("truth", "label")
        for part in ("all", "contrast")
        for f in fractions
    ]
    parts = tuple(t.claim for t in tests if t.against == "truth" and t.slice == "all" and t.fraction < 1)
    return Theorem1(tests, AllOf(THEOREM1_NAME, parts, alpha), fractions)


def study_verdicts(claims: list[MethodClaim], t1: Theorem1, alpha: float = ALPHA) -> dict[str, Decision]:
    """Every claim's verdict in the study's family: the method claims (and any claim passed with them), Theorem 1's
    rows and Theorem 1 itself; the primary ones by the fixed sequence of :data:`PRIMARY_SEQUENCE`
    (:func:`pargs.metrics.claims.decide`). A primary claim the evidence cannot test (the decision-level one of a
    study from before the ``decisions`` step) is left out of the sequence; the report names the sequence used."""
    family = [c.claim for c in claims] + [t.claim for t in t1.tests] + [t1.claim]
    names = {c.name for c in family}
    return decide(family, [n for n in PRIMARY_SEQUENCE if n in names], alpha)


def pooled_summary(ev: Evidence, rm: str):
    """:func:`pargs.metrics.ground_truth_agreement.summarize` of one RM's outcomes pooled over seeds."""
    return summarize([o for s in ev.seeds for o in ev.outcomes[s][rm]])


@dataclass
class Findings:
    """Everything the report states, computed before any of it is written (compute, then format)."""

    ev: Evidence
    claims: list[MethodClaim]  #: the method claims in both views (and any claim of that shape passed with them)
    theorem1: Theorem1
    verdicts: dict[str, Decision]  #: claim name -> its verdict in the study's family (:func:`study_verdicts`)
    alpha: float = ALPHA
    #: seed -> its decision-level numbers (:func:`pargs.study.decisions.summarise_seed`); empty without decisions
    decisions: dict[int, decisions.SeedSummary] = field(default_factory=dict)
    #: ranking a step's candidates against the decoding reward (:func:`pargs.study.decisions.ranking_vs_reward`)
    ranking: decisions.RankingVsReward | None = None


def analyse(ev: Evidence, alpha: float = ALPHA) -> Findings:
    """Test every claim of the study on ``ev`` (the method claims, then the decision-level claim, then Theorem 1)
    and decide every verdict; summarise the decision-level evidence."""
    claims = method_claims(ev, alpha) + decision_claims(ev, alpha)
    t1 = theorem1(ev, alpha)
    summaries = {s: decisions.summarise_seed(rows) for s, rows in sorted(ev.decisions.items())}
    ranking = decisions.ranking_vs_reward(summaries, {m: seed_means(ev, m) for m in ev.rewards}) if summaries else None
    return Findings(ev, claims, t1, study_verdicts(claims, t1, alpha), alpha, summaries, ranking)
