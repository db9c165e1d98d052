import pytest

from pargs.metrics.significance import mcnemar, pooled_mcnemar


def _outcomes(a_only, b_only, both, neither):
    a = [True] * a_only + [False] * b_only + [True] * both + [False] * neither
    b = [False] * a_only + [True] * b_only + [True] * both + [False] * neither
    return a, b


def test_mcnemar_exact_p_values_by_hand():
    a, b = _outcomes(8, 2, 5, 3)
    # 10 discordant items, 8 of them A's: P(X >= 8 | Bin(10, 1/2)) = (45 + 10 + 1) / 1024
    greater = mcnemar(a, b, "greater", "partial", "full")
    assert (greater.a_only, greater.b_only, greater.n_items) == (8, 2, 18)
    assert greater.p_value == pytest.approx(56 / 1024)
    assert greater.hypothesis == "H1: P(correct | partial) > P(correct | full)"
    # two-sided: both tails of a symmetric binomial, 2 * 56 / 1024
    assert mcnemar(a, b).p_value == pytest.approx(112 / 1024)
    # less: P(X <= 8) = 1 - P(X >= 9) = 1 - 11 / 1024
    assert mcnemar(a, b, "less").p_value == pytest.approx(1013 / 1024)
    # the concordant items change nothing
    assert mcnemar(*_outcomes(8, 2, 0, 40)).p_value == pytest.approx(112 / 1024)


def test_mcnemar_without_discordant_items_and_mismatched_lengths():
    assert mcnemar(*_outcomes(0, 0, 4, 2)).p_value == 1.0
    with pytest.raises(ValueError, match="same items"):
        mcnemar([True, False], [True])


def test_pooled_mcnemar_adds_the_discordant_counts_of_the_seeds():
    seeds = [mcnemar(*_outcomes(3, 1, 2, 0)), mcnemar(*_outcomes(5, 1, 0, 7))]
    # per seed, two-sided: 3 of 4 -> 2 * P(X >= 3 | Bin(4, 1/2)) = 2 * 5 / 16
    assert seeds[0].p_value == pytest.approx(10 / 16)
    pooled = pooled_mcnemar(seeds, "greater")
    # pooled: 8 of 10 discordant items are A's, as in the hand case above
    assert (pooled.a_only, pooled.b_only, pooled.n_items) == (8, 2, 6 + 13)
    assert pooled.p_value == pytest.approx(56 / 1024)
