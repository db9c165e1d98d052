"""A claim of the paper tested across seeds: aggregation, the test across seeds, the fixed-sequence procedure across
the primary claims, and the verdict rule.

A study (``pargs study``) repeats the whole pipeline with S seeds. A claim compares two things seed by seed
(method A vs method B by oracle reward, paired by prompt; or the partial vs the full RM by agreement with a
ground truth, paired by preference pair or by decoding state), so each seed gives a per-seed test in each
direction, and the S per-seed differences give a test across seeds. The verdict is computed from those numbers
alone by :func:`verdict` (one claim) and :func:`decide` (the whole family); nothing is hand-written.

**Across seeds** (:func:`signed_rank_exact`): the exact Wilcoxon signed-rank test on the S per-seed mean
differences, one-sided, by enumerating all 2^S sign assignments of the ranks (average ranks for tied
magnitudes). It asks whether the difference is consistently on one side when the whole pipeline (data,
initialisations, decoding noise) is redrawn. Its smallest attainable p-value is ``1 / 2^S``
(:func:`smallest_p`): 0.03125 for S = 5, reached only when every seed's difference has the claimed sign.

**Zero differences** are handled by Pratt's method, across seeds and per seed (paired by prompt,
:func:`pargs.metrics.significance.paired_wilcoxon` with ``zero_method="pratt"``): a zero is ranked with the
other differences, so it pushes the non-zero ones to higher ranks, but its rank counts for neither side, and
only the signs of the non-zero differences are permuted. Dropping zeros instead (Wilcoxon's original rule)
would test as if the tied seeds or prompts had never been run, which overstates the evidence when many
differences are exactly zero (two greedy methods writing the same response). The number of zeros is counted
and reported next to each test (:attr:`SeedComparison.zeros`, :attr:`Decision.zeros`).

**The verdict rule** (alpha = 0.05 by default), one rule for every kind of claim. ``better`` ("A beats B")
compares A with B; ``not_worse`` ("A performs similarly to B", read as: A is not worse than B by more than
a declared margin delta, a non-inferiority test) compares A + delta with B. A seed is *for* the claim when its
per-seed test of H1: A (+ delta) > B has p <= alpha, *against* it when its test of H1: A (+ delta) < B has;
``q_for`` / ``q_against`` are the across-seed p-values of the same hypotheses (adjusted by the fixed sequence
for a primary claim, see below). In this order:

1. **inconclusive: S seeds** when the across-seed test cannot reach alpha with S seeds whatever the data
   (its smallest attainable p exceeds alpha): e.g. the 2-seed smoke study, whose smallest p is 1/4;
2. **not tested (fixed sequence stopped at C)**, for a primary claim only, when an earlier primary claim C of
   the sequence was not supported (below);
3. **supported** when ``q_for <= alpha`` and no seed is against it;
4. **evidence against** when ``q_against <= alpha`` and no seed is for it;
5. **no evidence** when no seed is for it and ``q_for > alpha`` (nothing speaks for the claim; seeds
   against it that do not add up to consistent evidence against it leave it here);
6. **mixed** otherwise: something speaks for it (a seed, or the across-seed test) but not cleanly: not
   consistent across seeds, or contradicted by a seed.

A ``not_worse`` claim needs positive evidence that the gap is within the margin; the absence of a significant
deficit is not enough.

**Primary claims: the fixed-sequence procedure.** The study declares, in its code and before it runs, which
claims are primary and in which order they are tested (:data:`pargs.study.evidence.PRIMARY_SEQUENCE`); only
their verdicts are confirmatory. They are tested one after another, each at the full alpha, and only while
every earlier one was supported: once one is not (any other verdict), the later ones are not tested (their
raw numbers are still shown). The adjusted p of the i-th claim is the largest raw across-seed p of claims 1..i
(:func:`fixed_sequence`), so a claim is supported exactly when its adjusted p <= alpha (and no seed is against
it); the report shows the raw and the adjusted p. Its p against the claim is adjusted the same way (the
largest of the earlier claims' p for and its own p against: it is tested only where the sequence reaches it).

Why it bounds the chance of any false "supported" among the primary claims by alpha, whatever the dependence
between them (they share seeds, models and methods): let C be the first claim of the sequence whose null
hypothesis is true (the claim does not hold). Every claim before C holds, so supporting it is no error; a false
"supported" anywhere therefore needs the sequence to reach C and to support C, which needs C's own p <= alpha,
an event of probability at most alpha. Only C's own test enters, so nothing is assumed about the joint
distribution of the p-values. Requiring also that no seed be against a claim only stops the sequence earlier,
which cannot add a false "supported". (A study too small for any claim to reach alpha reads "inconclusive"
throughout, the primary claims included.)

Why not Holm: Holm's first step tests the smallest p of a family of m claims at alpha / m, and the exact test
across 5 seeds cannot go below 1/32 = 0.031: with 2 or 3 primary claims (0.025, 0.0167) no primary claim could
be supported at 5 seeds however the data fell. The fixed sequence spends the whole alpha on each claim in turn,
at the price of an order declared in advance: a claim late in the sequence is tested only if every earlier
one was supported. Secondary claims (every other view and slice) are tested at alpha alone, as descriptions.

**A claim made of parts** that must all hold (e.g. Theorem 1 at 25, 50 and 75 % of the response,
:class:`AllOf`) is one claim of the family, tested as an intersection-union test: its p for the claim is the
largest of its parts' (no correction is needed: it holds only if every part does), its p against it the
smallest of the parts' times the number of parts (Bonferroni: any part against it contradicts it); per seed
the same with the seed's p-values.

**Seeds needed**: for a claim the study did not decide (neither supported nor evidence against, a claim the
sequence did not test included), the number of seeds that would give the across-seed test 80 % power at the
observed effect and spread (:mod:`pargs.metrics.seed_power`), at alpha (the level each claim is tested at,
primary or not), in the direction the observed mean points to.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from scipy.stats import rankdata

from pargs.metrics.reward_stats import mean_se
from pargs.metrics.seed_power import seeds_needed
from pargs.metrics.significance import paired_wilcoxon

SUPPORTED, NO_EVIDENCE, AGAINST, MIXED = "supported", "no evidence", "evidence against", "mixed"
VERDICTS = (SUPPORTED, NO_EVIDENCE, AGAINST, MIXED)  #: the decided and undecided outcomes besides "inconclusive"
ClaimKind = Literal["better", "not_worse"]
ALPHA = 0.05  #: significance level of every test of the verdict rule


def inconclusive(n_seeds: int) -> str:
    """The verdict of a claim the across-seed test cannot decide with ``n_seeds`` seeds."""
    return f"inconclusive: {n_seeds} seeds"


def signed_rank_exact(diffs: Sequence[float], alternative: Literal["greater", "less"] = "greater") -> float:
    """Exact one-sided Wilcoxon signed-rank p-value of the differences, zeros handled by Pratt's method.

    All differences (zeros included) are ranked by magnitude, ties averaged; the statistic W+ is the sum of the
    ranks of the positive ones. Under H0 each non-zero difference is positive or negative with probability 1/2
    and the zeros stay zero, so the p-value enumerates the 2^n' sign patterns of the n' non-zero differences:
    ``"greater"``: P(W+ >= observed), ``"less"``: P(W+ <= observed). NaNs are left out; with no non-zero
    difference the p-value is 1.0.
    """
    d = [x for x in diffs if not math.isnan(x)]
    if not any(d):
        return 1.0
    ranks = rankdata([abs(x) for x in d])  # zeros take the lowest ranks; tied magnitudes share their average rank
    moving = [(r, x > 0) for r, x in zip(ranks, d) if x != 0]
    if len(moving) > 20:
        raise ValueError(f"signed_rank_exact enumerates 2^n patterns; {len(moving)} differences are too many")
    observed = sum(r for r, positive in moving if positive)
    eps = 1e-9
    hits = 0
    for signs in itertools.product((False, True), repeat=len(moving)):
        w = sum(r for (r, _), positive in zip(moving, signs) if positive)
        hits += w >= observed - eps if alternative == "greater" else w <= observed + eps
    return hits / 2 ** len(moving)


def smallest_p(n_seeds: int) -> float:
    """The smallest p-value :func:`signed_rank_exact` can give for ``n_seeds`` differences: ``1 / 2^n``."""
    return 1.0 / 2**n_seeds


def not_tested(stopped_at: str) -> str:
    """The verdict of a primary claim the fixed sequence did not reach: ``stopped_at`` is the claim it stopped at."""
    return f"not tested (fixed sequence stopped at {stopped_at})"


def fixed_sequence(pvalues: Sequence[float]) -> list[float]:
    """The fixed-sequence procedure's adjusted p-values, in the sequence's order: the i-th is the largest of the
    raw p-values 1..i. Claim i is rejected at alpha when its adjusted p <= alpha, i.e. when it and every claim
    before it have p <= alpha (strong control of the family-wise error rate, module docstring)."""
    out, running = [], 0.0
    for p in pvalues:
        running = max(running, p)
        out.append(running)
    return out


def verdict(
    p_for: Sequence[float],
    p_against: Sequence[float],
    across_for: float,
    across_against: float,
    alpha: float = ALPHA,
) -> str:
    """The claim's verdict by the rule of this module's docstring (its steps 1 and 3-6; :func:`decide` adds step 2):
    per-seed p-values in both directions and the across-seed p-values of both directions (adjusted, for a primary
    claim)."""
    if smallest_p(len(p_for)) > alpha:
        return inconclusive(len(p_for))
    n_for = sum(p <= alpha for p in p_for)
    n_against = sum(p <= alpha for p in p_against)
    if across_for <= alpha and n_against == 0:
        return SUPPORTED
    if across_against <= alpha and n_for == 0:
        return AGAINST
    if n_for == 0:
        return NO_EVIDENCE
    return MIXED


def margin_of(kind: ClaimKind, margin: float) -> float:
    """The shift A gets before it is compared with B: 0 for ``better``, ``margin`` (> 0) for ``not_worse``."""
    if kind == "better":
        return 0.0
    if kind == "not_worse":
        if not margin > 0:
            raise ValueError(
                f"a 'not_worse' claim needs a margin > 0 (the largest gap that counts as similar), got {margin}"
            )
        return margin
    raise ValueError(f"claim kind must be 'better' or 'not_worse', got {kind!r}")


@dataclass(frozen=True)
class SeedComparison:
    """A vs B on one seed."""

    seed: int
    a: float  #: A's value on the seed (e.g. its mean over prompts of the per-prompt mean reward)
    b: float  #: B's, likewise
    p_for: float  #: the seed's test of H1: A + margin > B (e.g. Wilcoxon signed-rank paired by prompt)
    p_against: float  #: the same, H1: A + margin < B
    n_prompts: int  #: items both were measured on (prompts, preference pairs, decoding states)
    zeros: int = 0  #: items whose paired difference (after the margin) is exactly zero

    @property
    def diff(self) -> float:
        return self.a - self.b


@dataclass(frozen=True)
class Claim:
    """A claim tested across seeds, with its verdict as if it stood alone (:func:`decide` gives the family's)."""

    name: str  #: short name, e.g. "PARGS vs ARGS-sampled"; unique within a study
    kind: str  #: "better" or "not_worse"
    seeds: list[SeedComparison]
    across_for: float  #: exact signed-rank across seeds of the differences + margin, H1: A + margin > B
    across_against: float  #: the same, H1: A + margin < B
    verdict: str  #: by :func:`verdict` at alpha, as if it stood alone
    margin: float = 0.0  #: delta of a ``not_worse`` claim (0 for ``better``)
    alpha: float = ALPHA

    @property
    def diff_mean_se(self) -> tuple[float, float]:
        return mean_se([s.diff for s in self.seeds])

    @property
    def seed_p_for(self) -> list[float]:
        return [s.p_for for s in self.seeds]

    @property
    def seed_p_against(self) -> list[float]:
        return [s.p_against for s in self.seeds]

    @property
    def part_diffs(self) -> list[list[float]]:
        """Per part (one here), the per-seed differences the across-seed test ran on (shifted by the margin)."""
        return [[s.diff + self.margin for s in self.seeds]]

    @property
    def zeros(self) -> int:
        """Seeds whose difference (after the margin) is exactly zero."""
        return sum(d == 0 for d in self.part_diffs[0])


def from_seeds(
    name: str,
    kind: ClaimKind,
    seeds: Sequence[SeedComparison],
    alpha: float = ALPHA,
    margin: float = 0.0,
) -> Claim:
    """A claim from its per-seed comparisons (each with its own per-seed tests): the across-seed test of the
    differences + margin in both directions, and the verdict as if the claim stood alone."""
    shift = margin_of(kind, margin)
    diffs = [c.diff + shift for c in seeds]
    across_for, across_against = signed_rank_exact(diffs, "greater"), signed_rank_exact(diffs, "less")
    result = verdict([c.p_for for c in seeds], [c.p_against for c in seeds], across_for, across_against, alpha)
    return Claim(name, kind, list(seeds), across_for, across_against, result, shift, alpha)


def compare_methods(
    name: str,
    kind: ClaimKind,
    a: Mapping[int, Mapping[str, float]],
    b: Mapping[int, Mapping[str, float]],
    alpha: float = ALPHA,
    margin: float = 0.0,
) -> Claim:
    """Claim "A beats B" (``better``) or "A is not worse than B by more than ``margin``" (``not_worse``) from
    per-seed per-prompt rewards.

    ``a[seed][prompt id]`` is A's mean reward on that prompt (its samples averaged); the seeds of A and B
    must be the same. Per seed: the mean over the prompts both answered, and one-sided Wilcoxon
    signed-rank tests paired by prompt in both directions of A + margin vs B, zeros by Pratt's method
    (:func:`pargs.metrics.significance.paired_wilcoxon`); across seeds: :func:`signed_rank_exact` of the
    per-seed differences + margin.
    """
    shift = margin_of(kind, margin)
    if set(a) != set(b):
        raise ValueError(f"{name}: A has seeds {sorted(a)}, B has {sorted(b)}")
    seeds = []
    for s in sorted(a):
        common = sorted(set(a[s]) & set(b[s]))
        if not common:
            raise ValueError(f"{name}: seed {s}: A and B share no prompt ids, nothing to pair")
        ma = sum(a[s][k] for k in common) / len(common)
        mb = sum(b[s][k] for k in common) / len(common)
        shifted = {k: v + shift for k, v in a[s].items()}
        p_for = paired_wilcoxon(shifted, b[s], "greater", zero_method="pratt")
        p_against = paired_wilcoxon(shifted, b[s], "less", zero_method="pratt")
        seeds.append(SeedComparison(s, ma, mb, p_for.p_value, p_against.p_value, len(common), p_for.n_zero))
    return from_seeds(name, kind, seeds, alpha, margin)


@dataclass(frozen=True)
class AllOf:
    """A claim made of parts that must all hold, tested as one claim (intersection-union; module docstring)."""

    name: str
    parts: tuple[Claim, ...]
    alpha: float = ALPHA

    @property
    def seed_p_for(self) -> list[float]:
        """Per seed: the largest of the parts' p-values for the claim (the seed is for it only if for every part)."""
        return [max(ps) for ps in zip(*(p.seed_p_for for p in self.parts))]

    @property
    def seed_p_against(self) -> list[float]:
        """Per seed: the smallest of the parts' p-values against it, times the number of parts (Bonferroni)."""
        k = len(self.parts)
        return [min(1.0, k * min(ps)) for ps in zip(*(p.seed_p_against for p in self.parts))]

    @property
    def across_for(self) -> float:
        return max(p.across_for for p in self.parts)

    @property
    def across_against(self) -> float:
        return min(1.0, len(self.parts) * min(p.across_against for p in self.parts))

    @property
    def verdict(self) -> str:
        """As if the claim stood alone (uncorrected)."""
        return verdict(self.seed_p_for, self.seed_p_against, self.across_for, self.across_against, self.alpha)

    @property
    def part_diffs(self) -> list[list[float]]:
        return [p.part_diffs[0] for p in self.parts]

    @property
    def zeros(self) -> int:
        return sum(p.zeros for p in self.parts)


@dataclass(frozen=True)
class SeedsNeeded:
    """How many seeds would give the across-seed test 80 % power (:mod:`pargs.metrics.seed_power`)."""

    #: "for" (to support the claim), "against" (to find evidence against it), or "none" (no effect to plan with:
    #: a mean difference of exactly 0, or a single seed, whose spread is unknown)
    direction: str
    seeds: int | None  #: None: more than seed_power.MAX_SEEDS seeds (or direction "none")
    level: float  #: the one-sided level the test must reach: alpha


@dataclass(frozen=True)
class Decision:
    """A claim's verdict within the study's family of claims."""

    name: str
    position: int  #: its place in the fixed sequence of primary claims (1 = first); 0 for a secondary claim
    across_for: float  #: raw across-seed p of the claim
    across_against: float  #: raw across-seed p against it
    adjusted_for: float  #: adjusted by the fixed sequence (:func:`fixed_sequence`; the raw p for a secondary claim)
    adjusted_against: float  #: the largest of the earlier primary claims' p for and its own p against
    seeds_for: int  #: seeds whose own test is for the claim at alpha
    seeds_against: int  #: seeds whose own test is against it at alpha
    zeros: int  #: zero per-seed differences (across the parts of a claim made of parts)
    verdict: str  #: the claim's verdict (within the fixed sequence, for a primary claim)
    alone: str  #: the verdict it would have on its own, at alpha (the same for a secondary claim)
    needed: SeedsNeeded | None  #: for an undecided claim: seeds for 80 % power at the observed effect

    @property
    def primary(self) -> bool:
        return self.position > 0


def _needed(claim: Claim | AllOf, level: float) -> SeedsNeeded:
    """Seeds for 80 % power in the direction the observed per-seed differences point to (module docstring)."""
    known = [[x for x in d if not math.isnan(x)] for d in claim.part_diffs]  # a seed without items has no difference
    if any(len(d) < 2 for d in known):
        return SeedsNeeded("none", None, level)
    stats = [(statistics.fmean(d), statistics.stdev(d)) for d in known]
    if all(m > 0 for m, _ in stats):  # every part must hold: the slowest part decides
        counts = [seeds_needed(m, sd, level) for m, sd in stats]
        return SeedsNeeded("for", None if None in counts else max(counts), level)
    against = [seeds_needed(-m, sd, level / len(stats)) for m, sd in stats if m < 0]
    if not against:
        return SeedsNeeded("none", None, level)
    found = [n for n in against if n is not None]  # any part against the claim contradicts it: the fastest decides
    return SeedsNeeded("against", min(found) if found else None, level)


def _decision(
    claim: Claim | AllOf, position: int, q_for: float, q_against: float, result: str, alpha: float
) -> Decision:
    """A claim's :class:`Decision` from its place in the sequence, its (adjusted) p-values and its verdict."""
    seeds_for = sum(p <= alpha for p in claim.seed_p_for)
    seeds_against = sum(p <= alpha for p in claim.seed_p_against)
    alone = verdict(claim.seed_p_for, claim.seed_p_against, claim.across_for, claim.across_against, alpha)
    needed = None if result in (SUPPORTED, AGAINST) else _needed(claim, alpha)
    return Decision(
        claim.name, position, claim.across_for, claim.across_against, q_for, q_against, seeds_for, seeds_against,
        claim.zeros, result, alone, needed,
    )  # fmt: skip


def decide(claims: Sequence[Claim | AllOf], sequence: Sequence[str] = (), alpha: float = ALPHA) -> dict[str, Decision]:
    """Every claim's verdict: the primary ones, named by ``sequence`` in the order declared, by the fixed-sequence
    procedure (module docstring), the others at alpha alone; seeds needed for each claim left undecided."""
    by_name = {c.name: c for c in claims}
    if len(by_name) != len(claims):
        raise ValueError(f"claim names must be unique: {[c.name for c in claims]}")
    unknown = [n for n in sequence if n not in by_name]
    if unknown or len(set(sequence)) != len(sequence):
        raise ValueError(f"the fixed sequence {list(sequence)} must name distinct claims; unknown: {unknown}")
    primary = [by_name[n] for n in sequence]
    q_for = fixed_sequence([c.across_for for c in primary])
    earlier = [0.0, *q_for[:-1]]  # the largest p for of the claims before each one
    out, stopped = {}, None
    for i, c in enumerate(primary):
        q_against = max(earlier[i], c.across_against)
        result = verdict(c.seed_p_for, c.seed_p_against, q_for[i], q_against, alpha)
        if stopped is not None and smallest_p(len(c.seed_p_for)) <= alpha:  # an inconclusive claim stays so
            result = not_tested(stopped)
        elif result != SUPPORTED:
            stopped = c.name
        out[c.name] = _decision(c, i + 1, q_for[i], q_against, result, alpha)
    for c in claims:
        if c.name not in out:
            result = verdict(c.seed_p_for, c.seed_p_against, c.across_for, c.across_against, alpha)
            out[c.name] = _decision(c, 0, c.across_for, c.across_against, result, alpha)
    return out
