from collections import Counter

import pytest
import torch

from pargs.prefixes import pair_prefix_positions, prefix_fraction_lengths, sample_prefix_rows


def test_longest_rule_pads_the_shorter_response_with_its_last_token():
    # pair 0: prompt 3, chosen 2 tokens, rejected 4 tokens; pair 1: prompt 1, chosen 1, rejected 1
    pos_w, pos_l, mask = pair_prefix_positions(
        torch.tensor([3, 1]), torch.tensor([2, 1]), torch.tensor([3, 1]), torch.tensor([4, 1]), "longest"
    )
    assert pos_w.tolist() == [[3, 4, 4, 4], [1, 1, 1, 1]]
    assert pos_l.tolist() == [[3, 4, 5, 6], [1, 1, 1, 1]]
    assert mask.tolist() == [[True] * 4, [True, False, False, False]]


def test_shortest_rule_stops_at_the_shorter_response():
    pos_w, pos_l, mask = pair_prefix_positions(
        torch.tensor([3]), torch.tensor([2]), torch.tensor([3]), torch.tensor([4]), "shortest"
    )
    assert pos_w.tolist() == [[3, 4]] and pos_l.tolist() == [[3, 4]] and mask.all()


def test_prefix_fractions_round_up_and_keep_one_token():
    lens = prefix_fraction_lengths(torch.tensor([4, 1, 10]), torch.tensor([2, 1, 3]), 0.25)
    assert lens.tolist() == [1, 1, 3]
    assert prefix_fraction_lengths(torch.tensor([4]), torch.tensor([2]), 0.5, "shortest").tolist() == [1]


def test_sampled_prefix_rows_respect_ratio_and_bounds():
    g = torch.Generator().manual_seed(0)
    len_w, len_l = torch.tensor([3, 5, 1, 2]), torch.tensor([4, 2, 1, 6])
    pair, length = sample_prefix_rows(len_w, len_l, 1.5, g)
    assert pair.numel() == 6
    assert ((length >= 1) & (length <= torch.maximum(len_w, len_l)[pair])).all()


@pytest.mark.parametrize(
    "weighting,expected",
    [
        # pair 0 has 1 term, pair 1 has 3: "term" draws each of the 4 (pair, length) terms a quarter of the time,
        # "pair" each pair half of the time (and pair 1's three lengths a sixth each)
        ("term", {(0, 1): 1 / 4, (1, 1): 1 / 4, (1, 2): 1 / 4, (1, 3): 1 / 4}),
        ("pair", {(0, 1): 1 / 2, (1, 1): 1 / 6, (1, 2): 1 / 6, (1, 3): 1 / 6}),
    ],
)
def test_prefix_row_sampling_distribution(weighting, expected):
    n = 24_000
    pair, length = sample_prefix_rows(
        torch.tensor([1, 3]), torch.tensor([1, 2]), n / 2, torch.Generator().manual_seed(0), weighting=weighting
    )
    counts = Counter(zip(pair.tolist(), length.tolist()))
    assert set(counts) == set(expected)
    chi2 = sum((counts[t] - n * p) ** 2 / (n * p) for t, p in expected.items())
    assert chi2 < 16.3  # chi-square, 3 degrees of freedom, p = 0.001


def test_bad_rule_and_ratio_fail_clearly():
    with pytest.raises(ValueError, match="pad_rule"):
        pair_prefix_positions(torch.tensor([1]), torch.tensor([1]), torch.tensor([1]), torch.tensor([1]), "middle")
    with pytest.raises(ValueError, match="ratio"):
        sample_prefix_rows(torch.tensor([1]), torch.tensor([1]), 0.0, torch.Generator())
