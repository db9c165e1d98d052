"""How many seeds the across-seed test of a claim needs: the power of the exact one-sided Wilcoxon signed-rank test.

A study tests each claim across S seeds with the exact signed-rank test on the S per-seed differences
(:func:`pargs.metrics.claims.signed_rank_exact`). For a claim it could not decide, the report says how many
seeds would give that test 80 % power **at the observed effect and spread**: the per-seed differences are
modelled as independent draws from Normal(mean, sd) with the mean and the sample standard deviation the study
observed (only their ratio, the standardised effect d = mean / sd, matters: the test uses ranks and signs).

**Method.** For each S, the test's critical value at the one-sided level is exact: the null distribution of
W+ (the sum of the ranks of the positive differences; continuous draws have no ties, so the ranks are 1..S) is
counted by dynamic programming over the 2^S sign patterns (:func:`critical_value`). The power, P(W+ >= critical
value) under Normal(d, 1) draws, is estimated by simulation (:data:`DRAWS` draws from a fixed generator, the
same draws for every S, so the number is reproducible and the power curve smooth). The answer is the smallest
S whose power reaches the target, scanning S upwards from the smallest S at which the level is attainable
(``1 / 2^S <= level``) to :data:`MAX_SEEDS`.

**Hand checks** (tests/metrics/test_seed_power.py): at S = 5 and level 0.05 only W+ = 15 (every seed positive)
rejects, so the power is exactly Phi(d)^5; for larger S the answer agrees with Noether's normal approximation
for the signed-rank test, n = (z_{1-level} + z_{power})^2 / (3 (p' - 1/2)^2) with p' = Phi(d sqrt 2).

Why not the normal approximation alone: at the handful of seeds a study runs, the exact test's attainable
levels are coarse (nothing below 1 / 2^S), which the approximation ignores.
"""

from __future__ import annotations

import math
from functools import cache, lru_cache

import numpy as np

POWER = 0.8  #: the target power of "seeds needed"
DRAWS = 4000  #: simulated studies per number of seeds (the power's Monte Carlo SE is about 0.006 near 0.8)
MAX_SEEDS = 100  #: the largest number of seeds searched; beyond it "seeds needed" reads "more than 100"
RNG_SEED = 20261204  #: the generator's seed: the same inputs give the same answer


def min_seeds(level: float) -> int:
    """The fewest seeds at which the exact one-sided test can reach ``level`` (``1 / 2^S <= level``)."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    return max(1, math.ceil(math.log2(1 / level) - 1e-12))


@cache
def critical_value(n_seeds: int, level: float) -> int | None:
    """The smallest w with P(W+ >= w) <= ``level`` under H0 for ``n_seeds`` untied differences, or None when no
    w reaches the level. Counts of W+ over the 2^S sign patterns come from the product of (1 + x^r), r = 1..S."""
    top = n_seeds * (n_seeds + 1) // 2
    counts = np.zeros(top + 1, dtype=np.float64)  # float: 2^100 overflows int64, and the ratios are what matter
    counts[0] = 1.0
    for r in range(1, n_seeds + 1):
        counts[r:] = counts[r:] + counts[:-r].copy()
    tail = np.cumsum(counts[::-1])[::-1] / 2.0**n_seeds  # tail[w] = P(W+ >= w)
    hits = np.nonzero(tail <= level * (1 + 1e-12))[0]
    return int(hits[0]) if len(hits) else None


@lru_cache(maxsize=1)
def _standard_normals() -> np.ndarray:
    return np.random.default_rng(RNG_SEED).standard_normal((DRAWS, MAX_SEEDS))


def power(effect: float, n_seeds: int, level: float) -> float:
    """The exact one-sided signed-rank test's power at ``level`` with ``n_seeds`` differences drawn from
    Normal(effect, 1), estimated from :data:`DRAWS` simulated studies (0 when the level is out of reach)."""
    crit = critical_value(n_seeds, level)
    if crit is None:
        return 0.0
    if math.isinf(effect):
        return 1.0 if effect > 0 else 0.0
    x = effect + _standard_normals()[:, :n_seeds]
    ranks = np.argsort(np.argsort(np.abs(x), axis=1), axis=1) + 1
    w = np.where(x > 0, ranks, 0).sum(axis=1)
    return float(np.mean(w >= crit))


def seeds_needed(mean: float, sd: float, level: float, target: float = POWER) -> int | None:
    """The fewest seeds giving the exact one-sided signed-rank test ``target`` power at ``level`` when the per-seed
    differences are Normal(``mean``, ``sd``) (H1: the differences are positive); None when the mean is not
    positive (no number of seeds finds an effect in this direction) or more than :data:`MAX_SEEDS` are needed.
    An sd of 0 (every seed gave the same difference) is an unbounded effect: the fewest seeds the level allows."""
    if not mean > 0:
        return None
    effect = math.inf if sd == 0 else mean / sd
    if math.isnan(effect):
        return None
    for n in range(min_seeds(level), MAX_SEEDS + 1):
        if power(effect, n, level) >= target:
            return n
    return None
