"""The study's statistics and verdict rule (pargs/metrics/claims.py) against hand-computed values."""

from __future__ import annotations

import pytest

from pargs.metrics.claims import (
    MIXED,
    NOT_SUPPORTED,
    SUPPORTED,
    combine,
    compare_methods,
    margin_of,
    signed_rank_exact,
    smallest_p,
    verdict,
)


@pytest.mark.parametrize(
    ("diffs", "alternative", "expected"),
    [
        # ranks 1..5 all positive: only the all-plus pattern reaches W+ = 15
        ([1, 2, 3, 4, 5], "greater", 1 / 32),
        # W+ = 13: W+ >= 13 <=> the negative ranks sum to <= 2: {}, {1}, {2} -> 3 of 32
        ([1, -2, 3, 4, 5], "greater", 3 / 32),
        # P(W+ <= 13) = 1 - P(W- <= 1) = 1 - 2/32
        ([1, -2, 3, 4, 5], "less", 30 / 32),
        ([-1, -2, -3, -4, -5], "less", 1 / 32),
        ([-1, -2, -3, -4, -5], "greater", 1.0),
        # ties: |d| = 1, 1, 1, 2 -> ranks 2, 2, 2, 4; W+ = 8 of 10; W- <= 2: {} or one of the three 2s -> 4 of 16
        ([1, 1, -1, 2], "greater", 4 / 16),
        # zeros are dropped: as [1, 2], W+ = 3 only for ++ -> 1 of 4
        ([0, 1, 2], "greater", 1 / 4),
        ([0, 0], "greater", 1.0),
    ],
)
def test_signed_rank_exact_hand_values(diffs, alternative, expected):
    assert signed_rank_exact(diffs, alternative) == pytest.approx(expected)


def test_smallest_attainable_p():
    assert smallest_p(5) == 1 / 32
    assert signed_rank_exact([0.1, 0.2, 0.3, 0.4, 0.5]) == smallest_p(5)  # reached when every seed agrees


GOOD, BAD, NEUTRAL = 0.01, 0.9, 0.3


@pytest.mark.parametrize(
    ("p_for", "p_against", "across_for", "across_against", "expected"),
    [
        # A beats B: consistent across seeds, no seed against
        ([GOOD, NEUTRAL, NEUTRAL, NEUTRAL, NEUTRAL], [BAD] * 5, 1 / 32, 1.0, SUPPORTED),
        # consistent in sign but none significant per seed: still supported (the across-seed test is the claim's test)
        ([NEUTRAL] * 5, [BAD] * 5, 1 / 32, 1.0, SUPPORTED),
        # consistent across seeds, but one seed finds A significantly worse
        ([GOOD, GOOD, GOOD, GOOD, BAD], [BAD, BAD, BAD, BAD, GOOD], 1 / 32, 1.0, MIXED),
        # some seeds significant, not consistent across seeds
        ([GOOD, GOOD, NEUTRAL, NEUTRAL, BAD], [BAD] * 5, 2 / 32, 0.97, MIXED),
        # no seed significant for A and not consistent: no evidence for the claim
        ([NEUTRAL] * 5, [NEUTRAL] * 5, 3 / 32, 0.9, NOT_SUPPORTED),
        # across seeds A < B, although one seed favours A
        ([GOOD, BAD, BAD, BAD, BAD], [BAD, GOOD, GOOD, GOOD, GOOD], 31 / 32, 1 / 32, NOT_SUPPORTED),
    ],
)
def test_verdict_rule(p_for, p_against, across_for, across_against, expected):
    assert verdict(p_for, p_against, across_for, across_against) == expected


def test_a_not_worse_claim_needs_a_margin():
    with pytest.raises(ValueError, match="margin > 0"):
        margin_of("not_worse", 0.0)
    with pytest.raises(ValueError, match="better"):
        margin_of("similar", 0.2)
    assert margin_of("better", 0.2) == 0.0


def _slightly_worse(seeds: int = 5):
    """Per seed, six prompts on which A - B = -0.10, -0.09, ..., -0.05 (plus 0.001 x seed): A is a little worse."""
    b = {s: {f"p{i}": float(i) for i in range(6)} for s in range(seeds)}
    a = {s: {k: v - 0.1 + 0.01 * i + 0.001 * s for i, (k, v) in enumerate(b[s].items())} for s in range(seeds)}
    return a, b


def test_similar_is_a_non_inferiority_test():
    """The same data, A a little worse than B in every seed and on every prompt, under three readings."""
    a, b = _slightly_worse()
    # "A beats B": every difference is negative -> per seed p(A > B) = 1, p(A < B) = 1/2^6; across: 1/32 against
    better = compare_methods("A vs B", "better", a, b)
    assert all(x.p_for == pytest.approx(1.0) and x.p_against == pytest.approx(1 / 64) for x in better.seeds)
    assert (better.across_for, better.across_against) == (pytest.approx(1.0), pytest.approx(1 / 32))
    assert better.verdict == NOT_SUPPORTED and better.margin == 0.0
    # "not worse by more than 0.2": A + 0.2 - B = 0.10 ... 0.15 > 0 everywhere -> p_for = 1/64 per seed, 1/32 across
    similar = compare_methods("A vs B", "not_worse", a, b, margin=0.2)
    assert all(x.p_for == pytest.approx(1 / 64) for x in similar.seeds) and similar.across_for == pytest.approx(1 / 32)
    assert similar.verdict == SUPPORTED and similar.margin == 0.2
    assert similar.diff_mean_se[0] == pytest.approx(-0.075 + 0.002)  # the reported difference is not shifted
    # "not worse by more than 0.04": A + 0.04 - B = -0.06 ... -0.01 < 0 everywhere -> consistently worse than that
    strict = compare_methods("A vs B", "not_worse", a, b, margin=0.04)
    assert strict.across_against == pytest.approx(1 / 32) and strict.verdict == NOT_SUPPORTED


def test_fewer_than_five_seeds_cannot_support_a_claim():
    a, b = _slightly_worse(seeds=4)
    claim = compare_methods("A vs B", "not_worse", a, b, margin=0.2)
    assert claim.across_for == pytest.approx(1 / 16) and claim.verdict == MIXED  # every seed for, but p > 0.05
    assert "4 seeds" in claim.note and "cannot be supported" in claim.note
    assert compare_methods("A vs B", "not_worse", *_slightly_worse(), margin=0.2).note == ""


def test_a_seed_without_shared_prompts_is_an_error():
    with pytest.raises(ValueError, match="seed 0: A and B share no prompt ids"):
        compare_methods("A vs B", "better", {0: {"p0": 1.0}}, {0: {"p1": 0.0}})


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        ([SUPPORTED] * 3, SUPPORTED),
        ([NOT_SUPPORTED] * 3, NOT_SUPPORTED),
        ([SUPPORTED, NOT_SUPPORTED], MIXED),
        ([SUPPORTED, MIXED, SUPPORTED], MIXED),
        ([], MIXED),
    ],
)
def test_combine(parts, expected):
    assert combine(parts) == expected


def test_compare_methods_by_hand():
    """Two seeds, six prompts. Seed 0: A = B + (1..6); seed 1: A - B = 0.5, 0.25, 0.75, -1, -2, -3 (a prompt
    only A answered is dropped)."""
    b0 = {f"p{i}": float(i) for i in range(6)}
    a0 = {k: v + i + 1 for i, (k, v) in enumerate(b0.items())}
    b1 = {f"p{i}": 0.0 for i in range(6)}
    a1 = {"p0": 0.5, "p1": 0.25, "p2": 0.75, "p3": -1.0, "p4": -2.0, "p5": -3.0, "p9": 100.0}
    claim = compare_methods("A vs B", "better", {0: a0, 1: a1}, {0: b0, 1: b1})
    s0, s1 = claim.seeds
    assert (s0.a, s0.b, s0.n_prompts) == (pytest.approx(6.0), pytest.approx(2.5), 6)
    assert (s1.a, s1.b, s1.n_prompts) == (pytest.approx(-0.75), 0.0, 6)
    # seed 0: six positive distinct differences -> exact p = 1 / 2^6; the other direction: 1
    assert s0.p_for == pytest.approx(1 / 64) and s0.p_against == pytest.approx(1.0)
    # seed 1: ranks of |d| 1..6, the positive ones 2, 1, 3: W+ = 6. Subsets of {1..6} summing to <= 6: the empty
    # one, 6 singletons, (1,2) (1,3) (1,4) (1,5) (2,3) (2,4), (1,2,3): 14 -> P(W+ <= 6) = 14/64; summing to <= 5:
    # 1 + 5 + 4 = 10 -> P(W+ >= 6) = 54/64
    assert s1.p_against == pytest.approx(14 / 64) and s1.p_for == pytest.approx(54 / 64)
    # across seeds: differences 3.5 and -0.75, ranks 2 and 1, W+ = 2: P(W+ >= 2) = 2/4, P(W+ <= 2) = 3/4
    assert claim.across_for == pytest.approx(0.5) and claim.across_against == pytest.approx(0.75)
    # seed 0 favours A significantly, the across-seed test does not: mixed
    assert claim.verdict == MIXED
    mean, se = claim.diff_mean_se
    assert mean == pytest.approx((3.5 - 0.75) / 2) and se == pytest.approx((3.5 + 0.75) / 2)
