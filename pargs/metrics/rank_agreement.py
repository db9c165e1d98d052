"""How well a scorer orders the candidates of one decoding step: Kendall's tau-b and top-1 agreement with their values.

The candidates' values are the Monte Carlo estimates of :mod:`pargs.metrics.decision_values`; the scores are a
scorer's (a reward model's r(x, y + v), or the reference LM's log-probability). Both orders are compared pair by
pair of candidates.

**Kendall's tau-b over a set of pairs** (:func:`tau_b`). A pair (i, j) is concordant when scores and values order
it the same way, discordant when they order it oppositely, and tied in the scores or in the values when either
gives the two the same number (exact equality). With n0 pairs, C concordant, D discordant, n1 pairs tied in the
scores and n2 tied in the values::

    tau_b = (C - D) / sqrt((n0 - n1) * (n0 - n2))

which is the textbook tau-b when the set is every pair of the state, and the same statistic on a part of the
pairs otherwise. Ties: a pair tied on either side counts neither concordant nor discordant, and the denominator
shrinks by the ties on each side, so tau_b reaches +-1 for orders that agree up to ties. Values tie exactly
when every completion of two candidates ends with the same reward (common random numbers make that possible,
e.g. two synonyms the task's reward does not tell apart) or when both are exact and equal. When the values tie on
every pair of the set, there is no order to recover and tau_b is NaN (the state is left out of that average);
when only the scores tie on every pair, the scorer orders nothing and tau_b is 0.

**The EOS split** (:func:`rank_state`). A candidate that is an end-of-sequence token ends the response, so its
value is the complete response's reward, while every other candidate's value averages over completions. The
pairs of a state are split into those with an EOS candidate in them (should the response stop here rather
than go on with v?) and the rest (which continuation is best?); tau_b is computed on each part and on all pairs.

**Top-1 agreement** (:func:`top1`): the chance that the scorer's best candidate is a best candidate by value,
with the scorer's ties broken uniformly at random: ``|S ∩ V| / |S|`` for S the candidates of the highest score
and V those of the highest value; NaN, like tau_b, when the values all tie. Computed on all candidates and on
the non-EOS ones.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


def tau_b(scores: Sequence[float], values: Sequence[float], pairs: Iterable[tuple[int, int]] | None = None) -> float:
    """Kendall's tau-b of ``scores`` against ``values`` over ``pairs`` (index pairs; None: every pair).

    NaN when the values tie on every pair (or there is no pair), 0 when only the scores do; see the module
    docstring.
    """
    if len(scores) != len(values):
        raise ValueError(f"{len(scores)} scores for {len(values)} values")
    n = len(scores)
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)] if pairs is None else list(pairs)
    concordant = discordant = tied_scores = tied_values = 0
    for i, j in pairs:
        ds, dv = scores[i] - scores[j], values[i] - values[j]
        tied_scores += ds == 0
        tied_values += dv == 0
        if ds != 0 and dv != 0:
            if (ds > 0) == (dv > 0):
                concordant += 1
            else:
                discordant += 1
    n0 = len(pairs)
    if n0 - tied_values == 0:
        return math.nan
    if n0 - tied_scores == 0:
        return 0.0
    return (concordant - discordant) / math.sqrt((n0 - tied_scores) * (n0 - tied_values))


def top1(scores: Sequence[float], values: Sequence[float], among: Sequence[int] | None = None) -> float:
    """The chance that the highest-scored candidate (ties broken at random) has the highest value, over the
    candidates ``among`` (None: all); NaN when their values all tie (every pick is right: nothing to find),
    a single candidate included, or there is none."""
    idx = list(range(len(scores))) if among is None else list(among)
    if len({values[i] for i in idx}) < 2:
        return math.nan
    best_score = max(scores[i] for i in idx)
    best_value = max(values[i] for i in idx)
    picked = [i for i in idx if scores[i] == best_score]
    return sum(values[i] == best_value for i in picked) / len(picked)


@dataclass(frozen=True)
class StateRanking:
    """One scorer on one decoding state: how its order of the candidates agrees with their values."""

    tau: float  #: tau-b over every pair of candidates
    tau_eos: float  #: tau-b over the pairs with an EOS candidate (NaN when none is a candidate)
    tau_rest: float  #: tau-b over the pairs of non-EOS candidates
    top1: float  #: top-1 agreement over all candidates
    top1_rest: float  #: top-1 agreement over the non-EOS candidates
    eos: bool  #: an EOS token is among the candidates


def rank_state(scores: Sequence[float], values: Sequence[float], eos: Sequence[bool]) -> StateRanking:
    """:class:`StateRanking` of one state's candidates (their scores, values and whether each is an EOS token)."""
    n = len(scores)
    if len(eos) != n:
        raise ValueError(f"{n} scores for {len(eos)} EOS flags")
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    with_eos = [(i, j) for i, j in pairs if eos[i] or eos[j]]
    rest = [(i, j) for i, j in pairs if not (eos[i] or eos[j])]
    continuing = [i for i in range(n) if not eos[i]]
    return StateRanking(
        tau_b(scores, values, pairs),
        tau_b(scores, values, with_eos),
        tau_b(scores, values, rest),
        top1(scores, values),
        top1(scores, values, continuing),
        any(eos),
    )
