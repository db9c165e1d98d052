"""The study's statistics and verdict rule (pargs/metrics/claims.py) against hand-computed values."""

from __future__ import annotations

import statistics

import pytest

from pargs.metrics.claims import (
    AGAINST,
    MIXED,
    NO_EVIDENCE,
    SUPPORTED,
    AllOf,
    SeedComparison,
    compare_methods,
    decide,
    fixed_sequence,
    from_seeds,
    inconclusive,
    margin_of,
    not_tested,
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
        # Pratt: the zero takes rank 1, so 1 and 2 have ranks 2 and 3; W+ = 5 only for ++ -> 1 of 4
        ([0, 1, 2], "greater", 1 / 4),
        # Pratt: ranks 2, 3, 4 for 1, 2, -3; W+ = 5. Sign patterns of {2, 3, 4} sum to 0 2 3 4 5 6 7 9: >= 5 in 4
        # of 8. (Dropping the zero would rank 1, 2, -3 as 1, 2, 3, W+ = 3, and give 5/8.)
        ([0, 1, 2, -3], "greater", 4 / 8),
        ([0, 1, 2, -3], "less", 5 / 8),  # W+ <= 5: 0 2 3 4 5
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
        # no seed significant either way and not consistent: no evidence
        ([NEUTRAL] * 5, [NEUTRAL] * 5, 3 / 32, 0.9, NO_EVIDENCE),
        # two seeds significantly against, not consistently: still only "no evidence" for the claim
        ([NEUTRAL] * 5, [GOOD, GOOD, BAD, BAD, BAD], 0.5, 3 / 32, NO_EVIDENCE),
        # consistently A < B, no seed for A: evidence against
        ([BAD] * 5, [GOOD, NEUTRAL, NEUTRAL, NEUTRAL, NEUTRAL], 1.0, 1 / 32, AGAINST),
        # across seeds A < B, although one seed favours A significantly: mixed (the mirror of the third case)
        ([GOOD, BAD, BAD, BAD, BAD], [BAD, GOOD, GOOD, GOOD, GOOD], 31 / 32, 1 / 32, MIXED),
    ],
)
def test_verdict_rule(p_for, p_against, across_for, across_against, expected):
    assert verdict(p_for, p_against, across_for, across_against) == expected


def test_too_few_seeds_is_inconclusive_whatever_the_data():
    # two seeds: the smallest p across seeds is 1/4 > 0.05, so even two significant seeds decide nothing
    assert verdict([GOOD, GOOD], [BAD, BAD], 0.25, 1.0) == inconclusive(2) == "inconclusive: 2 seeds"
    assert verdict([BAD, BAD], [GOOD, GOOD], 1.0, 0.25) == "inconclusive: 2 seeds"
    # five seeds: 1/32 = 0.031 <= 0.05, so a claim every seed agrees with can be supported
    assert verdict([GOOD] * 5, [BAD] * 5, 1 / 32, 1.0) == SUPPORTED


def test_fixed_sequence_by_hand():
    # the i-th adjusted p is the largest raw p of the first i: 0.01; max(0.01, 0.04); max(.., 0.03); max(.., 0.2)
    assert fixed_sequence([0.01, 0.04, 0.03, 0.2]) == [0.01, 0.04, 0.04, 0.2]
    assert fixed_sequence([0.3, 0.01]) == [0.3, 0.3]  # a claim after a large p keeps it
    assert fixed_sequence([0.02]) == [0.02] and fixed_sequence([]) == []


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
    assert better.verdict == AGAINST and better.margin == 0.0
    # "not worse by more than 0.2": A + 0.2 - B = 0.10 ... 0.15 > 0 everywhere -> p_for = 1/64 per seed, 1/32 across
    similar = compare_methods("A vs B", "not_worse", a, b, margin=0.2)
    assert all(x.p_for == pytest.approx(1 / 64) for x in similar.seeds) and similar.across_for == pytest.approx(1 / 32)
    assert similar.verdict == SUPPORTED and similar.margin == 0.2
    assert similar.diff_mean_se[0] == pytest.approx(-0.075 + 0.002)  # the reported difference is not shifted
    # "not worse by more than 0.04": A + 0.04 - B = -0.06 ... -0.01 < 0 everywhere -> consistently worse than that
    strict = compare_methods("A vs B", "not_worse", a, b, margin=0.04)
    assert strict.across_against == pytest.approx(1 / 32) and strict.verdict == AGAINST


def test_fewer_than_five_seeds_cannot_support_a_claim():
    a, b = _slightly_worse(seeds=4)
    claim = compare_methods("A vs B", "not_worse", a, b, margin=0.2)
    assert claim.across_for == pytest.approx(1 / 16)  # every seed for, but 1/16 > 0.05 is the best 4 seeds can do
    assert claim.verdict == "inconclusive: 4 seeds"


def test_a_seed_without_shared_prompts_is_an_error():
    with pytest.raises(ValueError, match="seed 0: A and B share no prompt ids"):
        compare_methods("A vs B", "better", {0: {"p0": 1.0}}, {0: {"p1": 0.0}})


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
    # two seeds: the across-seed test cannot reach 0.05 (seed 0 favours A significantly, which is not enough)
    assert claim.verdict == "inconclusive: 2 seeds"
    mean, se = claim.diff_mean_se
    assert mean == pytest.approx((3.5 - 0.75) / 2) and se == pytest.approx((3.5 + 0.75) / 2)


def test_zero_differences_by_pratt_per_seed_and_across_seeds():
    """Per seed, four prompts with A - B = 0, 1, 2, -2.5: Pratt ranks them 1, 2, 3, 4 and gives the zero's rank to
    neither side; W+ = 5, and of the 8 sign patterns of {2, 3, 4}, 4 reach W+ >= 5 -> p = 1/2 (dropping the zero
    would give 5/8)."""
    b = {s: {f"p{i}": 0.0 for i in range(4)} for s in range(5)}
    a = {s: {"p0": 0.0, "p1": 1.0, "p2": 2.0, "p3": -2.5} for s in range(5)}
    claim = compare_methods("A vs B", "better", a, b)
    assert all(x.p_for == pytest.approx(0.5) and x.zeros == 1 for x in claim.seeds)
    assert claim.across_for == pytest.approx(1 / 32) and claim.zeros == 0  # five equal means of 0.125
    # across seeds: a seed with a zero difference: Pratt ranks 0, 0.1 ... 0.4 as 1 ... 5, the zero's rank counts for
    # neither side, and the 2^4 sign patterns of ranks 2..5 reach W+ = 14 once -> 1/16
    seeds = [SeedComparison(s, d, 0.0, 0.5, 0.5, 10) for s, d in enumerate([0.0, 0.1, 0.2, 0.3, 0.4])]
    tied = from_seeds("tied", "better", seeds)
    assert tied.across_for == pytest.approx(1 / 16) and tied.zeros == 1
    assert decide([tied])["tied"].zeros == 1


def _claim(name, diffs, p_for=None, p_against=None):
    """A claim from per-seed differences; per-seed p's default to 0.3 for and 0.9 against (no seed significant)."""
    p_for, p_against = p_for or [NEUTRAL] * len(diffs), p_against or [BAD] * len(diffs)
    seeds = [SeedComparison(s, d, 0.0, pf, pa, 10) for s, (d, pf, pa) in enumerate(zip(diffs, p_for, p_against))]
    return from_seeds(name, "better", seeds)


UP = [0.1, 0.2, 0.3, 0.4, 0.5]


def test_a_claim_of_parts_is_an_intersection_union_test():
    """Three parts; the second has one negative seed: W+ = 14, P(W+ >= 14) = P(W- <= 1) = 2/32."""
    a = _claim("25 %", UP, [0.01] * 5, [0.9] * 5)
    b = _claim("50 %", [-0.1, *UP[1:]], [0.9, 0.01, 0.01, 0.01, 0.01], [0.04, 0.9, 0.9, 0.9, 0.9])
    c = _claim("75 %", UP, [0.01] * 5, [0.9] * 5)
    assert b.across_for == pytest.approx(2 / 32) and b.across_against == pytest.approx(31 / 32)
    both = AllOf("Theorem 1", (a, b, c))
    assert both.across_for == pytest.approx(2 / 32)  # the largest part's
    assert both.across_against == pytest.approx(1.0)  # min(1, 3 x 31/32)
    assert both.seed_p_for == pytest.approx([0.9, 0.01, 0.01, 0.01, 0.01])  # per seed the largest
    assert both.seed_p_against[0] == pytest.approx(0.12)  # 3 x 0.04: not significant after Bonferroni
    # four seeds for every part, not consistent across seeds (2/32 > 0.05): mixed
    assert both.verdict == MIXED


#: six seeds, |d| ranked 1..6: every seed positive -> p = 1/64; the rank-1 seed negative -> P(W- <= 1) = 2/64; the
#: rank-2 seed negative -> P(W- <= 2) = 3/64 ({}, {1}, {2}); the rank-3 seed negative -> P(W- <= 3) = 5/64 ({}, {1},
#: {2}, {3}, {1, 2}). The first three are <= 0.05, the last is not.
UP6 = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
P1, P2, P3, P5 = UP6, [-0.1, *UP6[1:]], [0.1, -0.2, *UP6[2:]], [0.1, 0.2, -0.3, *UP6[3:]]


def test_fixed_sequence_where_every_claim_holds():
    parts = (_claim("25 %", P2), _claim("50 %", P1))  # Theorem 1's p: the larger part's, 2/64
    theorem = AllOf("Theorem 1", parts)
    claims = [theorem, _claim("decisions", P1), _claim("decoding", P3), _claim("Y", [-d for d in UP6])]
    out = decide(claims, ["Theorem 1", "decisions", "decoding"])
    assert [c.across_for for c in claims[:3]] == pytest.approx([2 / 64, 1 / 64, 3 / 64])
    # adjusted: 2/64; max(2/64, 1/64) = 2/64; max(2/64, 3/64) = 3/64 -> all <= 0.05, all supported
    assert [out[n].adjusted_for for n in ("Theorem 1", "decisions", "decoding")] == pytest.approx(
        [2 / 64, 2 / 64, 3 / 64]
    )
    assert [out[n].verdict for n in ("Theorem 1", "decisions", "decoding")] == [SUPPORTED] * 3
    assert [out[n].position for n in ("Theorem 1", "decisions", "decoding", "Y")] == [1, 2, 3, 0]
    assert all(out[n].needed is None for n in ("Theorem 1", "decisions", "decoding"))
    # p against a primary claim: the largest of the earlier claims' p for and its own p against (62/64 here)
    assert out["decoding"].adjusted_against == pytest.approx(max(2 / 64, 62 / 64))
    # a secondary claim is tested at alpha alone: consistently against, no seed for it
    assert out["Y"].verdict == AGAINST and not out["Y"].primary
    assert out["Y"].adjusted_against == out["Y"].across_against == pytest.approx(1 / 64)


def test_fixed_sequence_stops_at_the_first_claim_not_supported():
    claims = [_claim("Theorem 1", P1), _claim("decisions", P5), _claim("decoding", P1)]
    out = decide(claims, ["Theorem 1", "decisions", "decoding"])
    # raw 1/64, 5/64, 1/64 -> adjusted 1/64, 5/64, 5/64
    assert [out[c.name].across_for for c in claims] == pytest.approx([1 / 64, 5 / 64, 1 / 64])
    assert [out[c.name].adjusted_for for c in claims] == pytest.approx([1 / 64, 5 / 64, 5 / 64])
    assert out["Theorem 1"].verdict == SUPPORTED
    assert out["decisions"].verdict == NO_EVIDENCE  # 5/64 > 0.05 and no seed for it: the sequence stops here
    # the third would be supported on its own (p = 1/64), but the sequence did not reach it
    assert out["decoding"].verdict == not_tested("decisions") == "not tested (fixed sequence stopped at decisions)"
    assert out["decoding"].alone == SUPPORTED and out["decoding"].across_for == pytest.approx(1 / 64)
    # seeds needed of the undecided ones, at alpha (not alpha / 3). The third: with d = mean / sd = 0.35 / 0.1871 =
    # 1.871, five seeds are the fewest that can reach 0.05 (1/32; four give 1/16 at best), only when every seed is
    # positive: power Phi(1.871)^5 = 0.9693^5 = 0.855 >= 0.8 -> 5 seeds
    assert (out["decoding"].needed.direction, out["decoding"].needed.seeds) == ("for", 5)
    assert out["decoding"].needed.level == 0.05 and out["decisions"].needed.level == 0.05
    assert out["decisions"].needed.direction == "for"
    # the order is the declaration's: the same claims with the failing one last decide the first two
    again = decide(claims, ["Theorem 1", "decoding", "decisions"])
    assert [again[n].verdict for n in ("Theorem 1", "decoding", "decisions")] == [SUPPORTED, SUPPORTED, NO_EVIDENCE]
    with pytest.raises(ValueError, match="unique"):
        decide([claims[0], claims[0]])
    with pytest.raises(ValueError, match="unknown: \\['nope'\\]"):
        decide(claims, ["Theorem 1", "nope"])


def test_fixed_sequence_with_too_few_seeds_is_inconclusive_throughout():
    # two seeds: no claim can reach 0.05, so each reads inconclusive, the later ones too (not "not tested")
    claims = [_claim("a", [0.1, 0.2]), _claim("b", [0.1, 0.2])]
    out = decide(claims, ["a", "b"])
    assert out["a"].verdict == out["b"].verdict == "inconclusive: 2 seeds"


def test_seeds_needed_points_the_way_the_effect_does():
    # the second claim's seeds point against it, all but one: W+ = 1, p against = P(W+ <= 1) = 2/32 > 0.05
    down = [0.1, -0.2, -0.3, -0.4, -0.5]
    claims = [_claim("u1", UP), _claim("down", down), _claim("u2", UP)]
    out = decide(claims, ["u1", "down", "u2"])
    assert out["u1"].verdict == SUPPORTED and out["down"].verdict == NO_EVIDENCE
    assert out["down"].adjusted_against == pytest.approx(2 / 32)  # max(1/32 of u1, its own 2/32)
    assert out["u2"].verdict == not_tested("down")
    # down: mean -0.26, sd 0.2302: seeds for evidence against it, at 0.05
    from pargs.metrics.seed_power import seeds_needed

    assert out["down"].needed.direction == "against"
    assert out["down"].needed.seeds == seeds_needed(0.26, statistics.stdev(down), 0.05)
    # u2: d = 0.3 / 0.1581 = 1.897, power at five seeds Phi(1.897)^5 = 0.9711^5 = 0.864 >= 0.8 -> 5 seeds
    assert (out["u2"].needed.direction, out["u2"].needed.seeds) == ("for", 5)
    # a primary claim with consistent evidence against it is decided, and stops the sequence
    out = decide([_claim("against", [-d for d in UP]), _claim("u2", UP)], ["against", "u2"])
    assert out["against"].verdict == AGAINST and out["against"].needed is None
    assert out["u2"].verdict == not_tested("against")
