"""Kendall's tau-b, top-1 agreement and the EOS split on hand-worked rankings."""

import math

import pytest
from scipy.stats import kendalltau

from pargs.metrics.rank_agreement import rank_state, tau_b, top1


def test_tau_b_on_hand_worked_orders():
    assert tau_b([1, 2, 3], [10, 20, 30]) == 1.0
    assert tau_b([3, 2, 1], [10, 20, 30]) == -1.0
    # one pair of 6 tied in the scores, none in the values: 5 concordant, 0 discordant -> 5 / sqrt(5 * 6)
    assert tau_b([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(5 / math.sqrt(30))
    # the values tie on (0, 1); (0, 2) and (1, 2) are discordant -> -2 / sqrt(3 * 2)
    assert tau_b([3, 2, 1], [1, 1, 2]) == pytest.approx(-2 / math.sqrt(6))
    # orders that agree up to ties on both sides reach 1
    assert tau_b([1, 1, 2], [5, 5, 9]) == 1.0
    # scipy's tau-b on every pair agrees
    for x, y in (([1, 2, 2, 3], [1, 2, 3, 4]), ([3, 2, 1], [1, 1, 2]), ([0.3, -1, 2, 2, 5], [1, 1, 0, 4, 4])):
        assert tau_b(x, y) == pytest.approx(kendalltau(x, y, variant="b").statistic)


def test_tau_b_when_one_side_ties_everywhere():
    assert math.isnan(tau_b([1, 2, 3], [4, 4, 4]))  # no order to recover: left out
    assert tau_b([7, 7, 7], [1, 2, 3]) == 0.0  # a scorer that orders nothing
    assert math.isnan(tau_b([1], [1]))  # no pair
    assert math.isnan(tau_b([1, 2, 3], [1, 2, 3], pairs=[]))


def test_top1_breaks_the_scorers_ties_at_random_and_counts_value_ties_as_right():
    assert top1([0.1, 0.9, 0.5], [1, 3, 2]) == 1.0
    assert top1([0.9, 0.1, 0.5], [1, 3, 2]) == 0.0
    assert top1([0.5, 0.9, 0.9], [1, 3, 2]) == 0.5  # the scorer's two best, one of them right
    assert top1([0.1, 0.9, 0.5], [3, 3, 2]) == 1.0  # two best by value: either is right
    assert top1([0.9, 0.1, 0.5], [1, 3, 2], among=[0, 2]) == 0.0  # among 0 and 2 the best by value is 2
    assert math.isnan(top1([1.0], [1.0], among=[]))
    assert math.isnan(top1([0.1, 0.9, 0.5], [2, 2, 2]))  # every pick is right: nothing to find
    assert math.isnan(top1([0.1, 0.9, 0.5], [1, 3, 2], among=[1]))


def test_eos_split_of_the_pairs():
    # candidates 0, 2, 3 continue the response, 1 ends it (hand-worked)
    scores, values, eos = [0, 1, 2, 3], [0, 5, 1, 2], [False, True, False, False]
    r = rank_state(scores, values, eos)
    # pairs with EOS: (0,1) concordant, (1,2) and (1,3) discordant -> (1 - 2) / 3
    assert r.tau_eos == pytest.approx(-1 / 3)
    # pairs among 0, 2, 3: all concordant
    assert r.tau_rest == 1.0
    # all 6 pairs: 4 concordant, 2 discordant
    assert r.tau == pytest.approx(2 / 6)
    # the scorer's best (3) is not the best by value (1, EOS), but it is the best continuation
    assert (r.top1, r.top1_rest, r.eos) == (0.0, 1.0, True)
    no_eos = rank_state([0, 1, 2], [2, 1, 0], [False] * 3)
    assert math.isnan(no_eos.tau_eos) and no_eos.tau == no_eos.tau_rest == -1.0 and not no_eos.eos
    with pytest.raises(ValueError):
        rank_state([0, 1], [0, 1], [False])
