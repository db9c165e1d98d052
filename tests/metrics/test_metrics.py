"""Metrics against hand-worked values and the reference libraries."""

import itertools
import math

import numpy as np
import pytest
import torch
from scipy.stats import norm, rankdata, wilcoxon
from torchmetrics.text import ROUGEScore, SacreBLEUScore

from pargs.metrics import (
    DEBERTA_V3_LARGE,
    GPT2_LARGE,
    LLAMA2_7B,
    Shape,
    corpus_bleu,
    diversity,
    flops_per_token,
    mean_se,
    overhead_ratio,
    paired_wilcoxon,
    pairwise_rouge_l,
    per_prompt_means,
    reward_summary,
    rouge_l,
    sentence_bleu,
    time_per_token,
    time_per_token_se,
    win_tie_rate,
)


def test_mean_and_standard_error_by_hand():
    mean, se = mean_se([1.0, 2.0, 3.0, 6.0])  # mean 3; sample var (4+1+0+9)/3 = 14/3
    assert mean == 3.0 and se == pytest.approx(math.sqrt(14 / 3 / 4))
    assert math.isnan(mean_se([5.0])[1])


def test_samples_of_a_prompt_are_averaged_before_the_error_bar():
    per_prompt = per_prompt_means([("a", 1.0), ("a", 3.0), ("b", 4.0), ("c", 0.0), ("c", 0.0), ("c", 3.0)])
    assert per_prompt == {"a": 2.0, "b": 4.0, "c": 1.0}
    mean, se, n = reward_summary(per_prompt)
    assert (mean, n) == (pytest.approx(7 / 3), 3) and se == pytest.approx(np.std([2, 4, 1], ddof=1) / math.sqrt(3))


def _exact_wilcoxon_greater(diffs):
    """P(W+ >= observed) by enumerating every sign assignment (the test's exact null distribution)."""
    d = [x for x in diffs if x != 0]
    ranks = {v: i + 1 for i, v in enumerate(sorted(abs(x) for x in d))}  # no ties in the hand case
    w = sum(ranks[abs(x)] for x in d if x > 0)
    n = len(d)
    hits = sum(
        1 for signs in itertools.product((0, 1), repeat=n) if sum(r * s for r, s in zip(range(1, n + 1), signs)) >= w
    )
    return hits / 2**n


def test_wilcoxon_matches_the_exact_null_distribution():
    method = {"p1": 3.0, "p2": 2.5, "p3": 1.0, "p4": 4.2, "p5": 0.1, "p6": 2.2, "extra": 9.0}
    base = {"p1": 1.0, "p2": 2.0, "p3": 1.3, "p4": 1.0, "p5": -0.6, "p6": 1.1}
    result = paired_wilcoxon(method, base, "greater", "pargs", "args")
    diffs = [method[k] - base[k] for k in sorted(base)]
    assert result.p_value == pytest.approx(_exact_wilcoxon_greater(diffs))
    assert result.p_value == pytest.approx(wilcoxon(diffs, alternative="greater").pvalue)
    assert (result.n_pairs, result.n_dropped) == (6, 1)
    assert result.hypothesis == "H1: reward(pargs) > reward(args)"
    assert paired_wilcoxon({"a": 1.0}, {"a": 1.0}).p_value == 1.0
    with pytest.raises(ValueError, match="no prompt ids"):
        paired_wilcoxon({"a": 1.0}, {"b": 1.0})


def test_wilcoxon_zero_differences_pratt_or_dropped():
    """A - B = 0, 1, 2, -3. Dropped (Wilcoxon): ranks 1, 2, 3 for 1, 2, -3, W+ = 3; the subsets of {1, 2, 3} sum
    to 0 1 2 3 3 4 5 6, P(W+ >= 3) = 5/8. Pratt: the zero takes rank 1, so 1, 2, -3 rank 2, 3, 4, W+ = 5; the
    subsets of {2, 3, 4} sum to 0 2 3 4 5 6 7 9, P(W+ >= 5) = 4/8."""
    base = {"a": 0.0, "b": 0.0, "c": 0.0, "d": 0.0}
    method = {"a": 0.0, "b": 1.0, "c": 2.0, "d": -3.0}
    dropped = paired_wilcoxon(method, base, "greater")
    pratt = paired_wilcoxon(method, base, "greater", zero_method="pratt")
    assert dropped.p_value == pytest.approx(5 / 8) and pratt.p_value == pytest.approx(4 / 8)
    assert dropped.n_zero == pratt.n_zero == 1


def test_wilcoxon_pratt_normal_approximation_by_hand():
    """60 prompts, 10 of them tied at zero: Pratt's normal approximation counts only the non-zero ranks,
    z = (W+ - sum r / 2) / sqrt(sum r^2 / 4)."""
    diffs = [0.0] * 10 + [0.1 * (i % 7 + 1) * (-1 if i % 3 == 0 else 1) for i in range(50)]
    base = {f"p{i}": 0.0 for i in range(60)}
    method = {f"p{i}": d for i, d in enumerate(diffs)}
    ranks = rankdata([abs(d) for d in diffs])
    moving = [(r, d > 0) for r, d in zip(ranks, diffs) if d != 0]
    w = sum(r for r, up in moving if up)
    z = (w - sum(r for r, _ in moving) / 2) / math.sqrt(sum(r * r for r, _ in moving) / 4)
    result = paired_wilcoxon(method, base, "greater", zero_method="pratt")
    assert result.p_value == pytest.approx(norm.sf(z), rel=1e-9) and result.n_zero == 10


def test_rouge_l_by_hand_and_against_torchmetrics():
    # LCS("the cat sat on the mat", "the cat is on the mat") = the cat on the mat (5): P = R = 5/6
    assert rouge_l("the cat sat on the mat", ["the cat is on the mat"]) == pytest.approx(5 / 6)
    assert rouge_l("a b", ["x y", "a b"]) == 1.0 and rouge_l("a b", []) == 0.0
    preds, refs = ["the quick brown fox jumps", "hello there world"], ["the brown fox jumped", "hello world"]
    tm = ROUGEScore(rouge_keys=("rougeL",))
    for p, r in zip(preds, refs):
        assert rouge_l(p, [r]) == pytest.approx(float(tm(p, r)["rougeL_fmeasure"]), abs=1e-6)


def test_bleu_by_hand_and_against_torchmetrics():
    # identical 4-gram-rich sentence: BLEU 100; a hand case: hypothesis = reference minus its last word
    assert sentence_bleu("the cat sat on the mat today", ["the cat sat on the mat today"]) == pytest.approx(100.0)
    hyp, ref = "the cat sat on the mat", "the cat sat on the mat today"
    # precisions 6/6, 5/5, 4/4, 3/3; brevity penalty exp(1 - 7/6)
    assert corpus_bleu([hyp], [[ref]]) == pytest.approx(100 * math.exp(1 - 7 / 6), abs=1e-4)
    preds = ["the quick brown fox jumps over", "a man is playing a guitar on stage"]
    refs = [["the quick brown fox jumped over the dog"], ["a man plays the guitar on a stage"]]
    assert corpus_bleu(preds, refs) == pytest.approx(float(SacreBLEUScore()(preds, refs)) * 100, abs=1e-3)


def test_diversity_by_hand():
    # pairs: (a,b) LCS 2 of 3/3 -> 2/3; (a,c) 0; (b,c) 0 -> mean 2/9
    assert pairwise_rouge_l(["x y z", "x y w", "p q r"]) == pytest.approx(2 / 9)
    mean, se, n = diversity({"p1": ["x y z", "x y w", "p q r"], "p2": ["a", "a"], "p3": ["only one"]})
    assert n == 2 and mean == pytest.approx((2 / 9 + 1.0) / 2)
    with pytest.raises(ValueError, match="two or more"):
        diversity({"p": ["one"]})


def test_flops_overhead_reproduces_the_paper():
    assert round(overhead_ratio(GPT2_LARGE, DEBERTA_V3_LARGE, k=10), 1) == 4.3
    assert round(overhead_ratio(LLAMA2_7B, DEBERTA_V3_LARGE, k=10), 2) == 0.47
    lm, rm = Shape(2, 4), Shape(1, 2)  # N = 384 and 48
    assert lm.forward_flops(3) == 2 * 384 + 2 * 2 * 3 * 4
    assert flops_per_token(lm, rm, 5, 3, "cached") == lm.forward_flops(3) + 5 * rm.forward_flops(3)
    assert flops_per_token(lm, rm, 5, 3, "from_scratch") == lm.forward_flops(3) + 5 * sum(
        rm.forward_flops(t) for t in range(4)
    )


def test_time_per_token():
    recs = [{"decode_seconds": 0.5, "tokens": 10}, {"decode_seconds": 1.5, "tokens": 30}]
    assert time_per_token(recs) == pytest.approx(2.0 / 40)


def test_win_tie_cancels_position_bias():
    longer = lambda p, a, b: "A" if len(a) > len(b) else "B" if len(b) > len(a) else "tie"  # noqa: E731
    res = win_tie_rate(longer, ["p"] * 4, ["long answer", "x", "same", "longer one"], ["short", "longer", "same", "y"])
    assert (res.win, res.tie, res.lose, res.n) == (0.5, 0.25, 0.25, 4)
    always_first = lambda p, a, b: "A"  # noqa: E731  a judge that only ever likes position A
    biased = win_tie_rate(always_first, ["p", "q"], ["a", "b"], ["c", "d"])
    assert (biased.win, biased.tie, biased.lose) == (0.0, 1.0, 0.0)


def test_local_lm_judge_reads_the_answer_log_probabilities():
    from pargs.metrics import LocalLMJudge
    from pargs.tasks.word_tokenizer import build_word_tokenizer
    from tests.conftest import make_lm

    tok = build_word_tokenizer("A B better ? : p x y z".split())
    lm = make_lm(tok, seed=4)
    judge = LocalLMJudge(lm, tok, template="{prompt} : {first} {second} better ?")
    for first, second in (("x", "y"), ("y", "z"), ("z", "x")):
        ids = torch.tensor([tok(f"p : {first} {second} better ?")["input_ids"]])
        logp = torch.log_softmax(lm(input_ids=ids).logits[0, -1], -1)
        a, b = tok.convert_tokens_to_ids(["A", "B"])
        assert judge("p", first, second) == ("A" if logp[a] > logp[b] else "B")
    assert (
        LocalLMJudge(lm, tok, template="{prompt} : {first} {second} better ?", tie_margin=1e9)("p", "x", "y") == "tie"
    )


def test_time_per_token_se_by_hand():
    # equal tokens per prompt: the ratio's SE is the plain SE of the per-prompt rates 0.2 and 0.6
    recs = [
        {"id": "a", "decode_seconds": 1.5, "tokens": 6},
        {"id": "a", "decode_seconds": 0.5, "tokens": 4},
        {"id": "b", "decode_seconds": 6.0, "tokens": 10},
    ]
    assert time_per_token(recs) == pytest.approx(0.4)
    assert time_per_token_se(recs) == pytest.approx(np.std([0.2, 0.6], ddof=1) / np.sqrt(2))
    # one rate for every prompt, whatever their lengths: no spread
    assert time_per_token_se(
        [{"id": "a", "decode_seconds": 1, "tokens": 1}, {"id": "b", "decode_seconds": 3, "tokens": 3}]
    ) == pytest.approx(0.0)
    assert math.isnan(time_per_token_se([{"id": "a", "decode_seconds": 1, "tokens": 2}]))
