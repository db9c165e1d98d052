import math

import pytest

from pargs.errors import ConfigError
from pargs.metrics.ground_truth_agreement import (
    PairOutcome,
    compare_rms,
    ground_truth_table,
    rm_agreement,
    summarize,
)
from pargs.metrics.prefix_agreement import prefix_agreement
from pargs.metrics.prefix_values import GroundTruth, PrefixComparison, PrefixValue, prefix_values
from pargs.models.encoding import encode_prompt, encode_response, pad_batch
from pargs.models.reward_model import sequence_rewards
from pargs.tasks.synthetic import but_contrast
from tests.conftest import make_lm, make_rm

PAIRS = [
    {
        "id": "a",
        "prompt": "write a review of the zoo about the shop :",
        "chosen": "the shop was good and it was nice .",
        "rejected": "it was bad .",
    },
    {
        "id": "b",
        "prompt": "write a short review of the car about the engine :",
        "chosen": "the engine was great .",
        "rejected": "the trunk was not good but the engine was okay .",
    },
    {
        "id": "c",
        "prompt": "write a review of the hotel about the staff :",
        "chosen": "the room was bad but the staff was great .",
        "rejected": "the staff was good but the pool was awful .",
    },
    {
        "id": "d",
        "prompt": "write a detailed review of the phone about the screen :",
        "chosen": "the screen was very good , the battery was okay and the camera was nice .",
        "rejected": "the screen was good and the screen was bad .",
    },
]


def test_end_to_end_against_scoring_each_prefix_from_scratch(tokenizer):
    lm, rm = make_lm(tokenizer), make_rm(tokenizer)
    gt = prefix_values(lm, tokenizer, PAIRS, m=2, seed=3, max_new_tokens=20)
    got = rm_agreement(rm, tokenizer, PAIRS, gt, batch_size=3, contrast=but_contrast)
    truth = {(c.pair_id, c.fraction): c for c in gt.comparisons}
    assert [(o.pair_id, o.fraction) for o in got if o.pair_id == "a"] == [("a", f) for f in (0.25, 0.5, 0.75, 1.0)]
    assert len(got) == len(PAIRS) * 4
    for o in got:
        pair = next(p for p in PAIRS if p["id"] == o.pair_id)
        c = truth[(o.pair_id, o.fraction)]
        p = encode_prompt(tokenizer, pair["prompt"])
        w, lo = encode_response(tokenizer, pair["chosen"]), encode_response(tokenizer, pair["rejected"])
        ids, mask = pad_batch([p + w[: c.length_w], p + lo[: c.length_l]], tokenizer.pad_token_id)
        r_w, r_l = sequence_rewards(rm, ids, mask).tolist()
        assert o.label == (1.0 if r_w > r_l else 0.0 if r_w < r_l else 0.5)
        if c.preferred == 0:
            assert math.isnan(o.truth)
        else:
            better_first = (r_w, r_l) if c.preferred == 1 else (r_l, r_w)
            assert o.truth == (1.0 if better_first[0] > better_first[1] else 0.0)
        assert o.z == c.z
        # "c": -1 before the 'but', 1.5 in all; "b"'s rejected stays negative (-0.5, then -0.25): not a contrast
        assert o.contrast is (o.pair_id == "c")
    # the label view is the one prefix_agreement computes
    label = {f: s.label for f, s in summarize(got).items()}
    assert label == pytest.approx(prefix_agreement(rm, tokenizer, PAIRS))
    # at 100 % both responses are complete: the ground truth is the oracle's own preference, called with certainty
    assert all(abs(truth[(p["id"], 1.0)].z) == math.inf for p in PAIRS)
    with pytest.raises(ConfigError, match="no ground truth"):
        rm_agreement(rm, tokenizer, PAIRS + [dict(PAIRS[0], id="e")], gt)
    shifted = GroundTruth(gt.comparisons, gt.m, gt.seed, gt.max_new_tokens, "shortest")
    with pytest.raises(ConfigError, match="cuts prefixes of"):
        rm_agreement(rm, tokenizer, PAIRS, shifted)


def _outcomes(label, truth, z=(3, 0.5, -5, 2.5, 0, math.inf), contrast=(True, False, True, False, False, True)):
    return [
        PairOutcome(f"p{i}", 0.5, lab, tru, zz, c) for i, (lab, tru, zz, c) in enumerate(zip(label, truth, z, contrast))
    ]


A = _outcomes(label=(1, 0, 1, 0.5, 1, 0), truth=(1, 1, 0, 0.5, math.nan, 0))
B = _outcomes(label=(1, 1, 1, 1, 1, 1), truth=(0, 1, 1, 1, math.nan, 1))


def test_summary_by_hand():
    s = summarize(A)[0.5]
    assert (s.n_pairs, s.n_truth, s.n_confident, s.n_contrast) == (6, 5, 4, 3)
    assert s.label == pytest.approx(3.5 / 6)
    assert s.truth == pytest.approx((1 + 1 + 0 + 0.5 + 0) / 5)  # p4's ground truth is a tie: left out
    assert s.truth_confident == pytest.approx((1 + 0 + 0.5 + 0) / 4)  # |z| > 2: p0, p2, p3, p5
    assert (s.label_contrast, s.truth_contrast) == pytest.approx((2 / 3, 1 / 3))  # p0, p2, p5


def test_compare_rms_drops_ties_and_pairs_the_rest():
    # vs ground truth: p3 (A's tie) and p4 (a ground-truth tie) drop; A alone right on p0, B alone on p2, p5
    t = compare_rms(A, B, 0.5, alternative="less")
    assert (t.a_only, t.b_only, t.n_items) == (1, 2, 4)
    assert t.p_value == pytest.approx(4 / 8)  # P(X <= 1 | Bin(3, 1/2))
    assert compare_rms(A, B, 0.5, z_min=2.0).n_items == 3  # p1 (|z| = 0.5) drops too
    t = compare_rms(A, B, 0.5, against="label", alternative="less")
    assert (t.a_only, t.b_only, t.n_items) == (0, 2, 5) and t.p_value == pytest.approx(1 / 4)
    with pytest.raises(ConfigError, match="same pairs"):
        compare_rms(A, B[:-1], 0.5)


def test_table_by_hand():
    value = lambda se: PrefixValue(0.0, se, 16)  # noqa: E731
    gt = GroundTruth(
        [
            PrefixComparison("p0", 0.5, 3, 3, value(0.1), value(0.3)),
            PrefixComparison("p0", 1.0, 6, 6, PrefixValue(1.0, 0.0, 0), PrefixValue(0.0, 0.0, 0)),
        ],
        m=16,
        seed=7,
        max_new_tokens=32,
        pad_rule="longest",
    )
    table = ground_truth_table({"partial": A}, gt)
    assert "| partial | 50 % | 6 | 0.583 | 0.500 (n=5) | 4 | 0.375 | 3 | 0.667 | 0.333 |" in table
    assert "m = 16 sampled completions (seed 7" in table and "50 %: 0.200, 100 %: exact" in table
    plain = ground_truth_table({"partial": [PairOutcome("p0", 0.5, 1.0, math.nan, 0.0)]}, gt)
    assert "contrast" not in plain and "| partial | 50 % | 1 | 1.000 | – (n=0) | 0 | – |" in plain
