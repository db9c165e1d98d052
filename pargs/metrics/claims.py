"""A claim of the paper tested across seeds: aggregation, the test across seeds, and the verdict rule.

A study (``pargs study``) repeats the whole pipeline with S seeds. A claim compares two things seed by seed
(method A vs method B by oracle reward, paired by prompt; or the partial vs the full RM by agreement with a
ground truth, paired by preference pair), so each seed gives a per-seed test in each direction, and the S
per-seed differences give a test across seeds. The verdict is computed from those numbers alone by
:func:`verdict`; nothing is hand-written.

**Across seeds** (:func:`signed_rank_exact`): the exact Wilcoxon signed-rank test on the S per-seed mean
differences, one-sided, by enumerating all 2^S sign assignments of the ranks (average ranks for tied
magnitudes, zero differences dropped). It asks whether the difference is consistently on one side when the
whole pipeline (data, initialisations, decoding noise) is redrawn. Its smallest attainable p-value is
``1 / 2^S`` (:func:`smallest_p`): 0.03125 for S = 5, reached only when every seed's difference has the
claimed sign.

**The verdict rule** (alpha = 0.05 by default), one rule for both kinds of claim. ``better`` ("A beats B")
compares A with B; ``not_worse`` ("A performs similarly to B", read as: A is not worse than B by more than
a declared margin delta, a non-inferiority test) compares A + delta with B. With ``p_for`` the per-seed
p-values of H1: A (+ delta) > B, ``p_against`` those of H1: A (+ delta) < B, and ``across_for`` /
``across_against`` the across-seed p-values of the same hypotheses:

1. **supported** when ``across_for <= alpha`` (every seed's difference on the claimed side, for S = 5) and
   no seed has ``p_against <= alpha``;
2. **not supported** when no seed has ``p_for <= alpha`` (no seed gives evidence for the claim), or
   ``across_against <= alpha`` (consistent evidence against it);
3. **mixed** otherwise (some seed supports it significantly, but not consistently across seeds).

"Not supported" therefore means "the study gives no consistent evidence for it", which includes "the study
shows the opposite"; the report prints the numbers next to each verdict. A ``not_worse`` claim needs
positive evidence that the gap is within the margin; the absence of a significant deficit is not enough.
With fewer than 5 seeds the across-seed test cannot reach 0.05 (:func:`smallest_p`), so no claim can be
supported: :attr:`Claim.note` says so.

A claim made of several parts (e.g. Theorem 1 at 25, 50 and 75 % of the response) is **supported** when
every part is, **not supported** when every part is not, and **mixed** otherwise (:func:`combine`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from scipy.stats import rankdata

from pargs.metrics.reward_stats import mean_se
from pargs.metrics.significance import paired_wilcoxon

SUPPORTED, NOT_SUPPORTED, MIXED = "supported", "not supported", "mixed"
ClaimKind = Literal["better", "not_worse"]
ALPHA = 0.05  #: significance level of every test of the verdict rule


def signed_rank_exact(diffs: Sequence[float], alternative: Literal["greater", "less"] = "greater") -> float:
    """Exact one-sided Wilcoxon signed-rank p-value of the differences (all 2^n sign patterns enumerated).

    The statistic is the sum of the ranks of the positive differences (of |d|, zeros dropped, ties
    averaged); ``"greater"``: P(W+ >= observed) under H0 (each sign equally likely), ``"less"``:
    P(W+ <= observed). With no non-zero difference the p-value is 1.0.
    """
    d = [x for x in diffs if x != 0 and not math.isnan(x)]
    if not d:
        return 1.0
    if len(d) > 20:
        raise ValueError(f"signed_rank_exact enumerates 2^n patterns; {len(d)} differences are too many")
    ranks = rankdata([abs(x) for x in d])  # tied magnitudes share their average rank
    observed = sum(r for r, x in zip(ranks, d) if x > 0)
    eps = 1e-9
    hits = 0
    for signs in itertools.product((False, True), repeat=len(d)):
        w = sum(r for r, positive in zip(ranks, signs) if positive)
        hits += w >= observed - eps if alternative == "greater" else w <= observed + eps
    return hits / 2 ** len(d)


def smallest_p(n_seeds: int) -> float:
    """The smallest p-value :func:`signed_rank_exact` can give for ``n_seeds`` differences: ``1 / 2^n``."""
    return 1.0 / 2**n_seeds


def verdict(
    p_for: Sequence[float],
    p_against: Sequence[float],
    across_for: float,
    across_against: float,
    alpha: float = ALPHA,
) -> str:
    """The claim's verdict by the rule of this module's docstring (per-seed p-values in both directions,
    and the across-seed p-values of both directions)."""
    if across_for <= alpha and not any(p <= alpha for p in p_against):
        return SUPPORTED
    if not any(p <= alpha for p in p_for) or across_against <= alpha:
        return NOT_SUPPORTED
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


def combine(verdicts: Sequence[str]) -> str:
    """One verdict for a claim of several parts: all supported / all not supported / otherwise mixed."""
    if verdicts and all(v == SUPPORTED for v in verdicts):
        return SUPPORTED
    if verdicts and all(v == NOT_SUPPORTED for v in verdicts):
        return NOT_SUPPORTED
    return MIXED


@dataclass(frozen=True)
class SeedComparison:
    """Method A vs method B on one seed."""

    seed: int
    a: float  #: A's mean over prompts of the per-prompt mean reward
    b: float  #: B's, likewise
    p_for: float  #: Wilcoxon signed-rank paired by prompt, H1: A + margin > B
    p_against: float  #: the same, H1: A + margin < B
    n_prompts: int  #: prompts both answered

    @property
    def diff(self) -> float:
        return self.a - self.b


@dataclass(frozen=True)
class Claim:
    """A claim tested across seeds, with its verdict."""

    name: str  #: short name, e.g. "PARGS vs ARGS-sampled"
    kind: str  #: "better" or "not_worse"
    seeds: list[SeedComparison]
    across_for: float  #: exact signed-rank across seeds of the differences + margin, H1: A + margin > B
    across_against: float  #: the same, H1: A + margin < B
    verdict: str
    margin: float = 0.0  #: delta of a ``not_worse`` claim (0 for ``better``)
    alpha: float = ALPHA

    @property
    def diff_mean_se(self) -> tuple[float, float]:
        return mean_se([s.diff for s in self.seeds])

    @property
    def note(self) -> str:
        """Why the verdict could not be "supported" whatever the data, or ""."""
        if smallest_p(len(self.seeds)) > self.alpha:
            return (
                f"{len(self.seeds)} seeds: the test across seeds cannot reach p <= {self.alpha:g} "
                f"(its smallest p is {smallest_p(len(self.seeds)):.3g}), so the claim cannot be supported"
            )
        return ""


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
    signed-rank tests paired by prompt in both directions of A + margin vs B
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
        p_for = paired_wilcoxon(shifted, b[s], "greater").p_value
        p_against = paired_wilcoxon(shifted, b[s], "less").p_value
        seeds.append(SeedComparison(s, ma, mb, p_for, p_against, len(common)))
    diffs = [c.diff + shift for c in seeds]
    across_for, across_against = signed_rank_exact(diffs, "greater"), signed_rank_exact(diffs, "less")
    result = verdict([c.p_for for c in seeds], [c.p_against for c in seeds], across_for, across_against, alpha)
    return Claim(name, kind, seeds, across_for, across_against, result, shift, alpha)
