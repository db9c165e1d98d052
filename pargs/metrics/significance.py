"""Paired significance tests: Wilcoxon signed-rank on per-prompt rewards (the paper's Tables 9-10), and
McNemar's exact test on two classifiers' right/wrong calls on the same items (e.g. two reward models
judged against a ground truth on the same preference pairs)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from scipy.stats import binomtest, wilcoxon

Alternative = Literal["greater", "less", "two-sided"]


@dataclass(frozen=True)
class PairedTest:
    """The result of :func:`paired_wilcoxon`."""

    statistic: float  #: scipy's W statistic
    p_value: float  #: probability of data at least this extreme under H0 (no difference)
    n_pairs: int  #: prompts both methods answered
    n_dropped: int  #: prompts only one of them answered (left out)
    alternative: str  #: "greater", "less" or "two-sided"
    hypothesis: str  #: the alternative hypothesis in words
    n_zero: int = 0  #: paired prompts whose difference is exactly zero (see ``zero_method``)


def paired_wilcoxon(
    method: Mapping[str, float],
    baseline: Mapping[str, float],
    alternative: Alternative = "greater",
    method_name: str = "method",
    baseline_name: str = "baseline",
    zero_method: Literal["wilcox", "pratt"] = "wilcox",
) -> PairedTest:
    """Wilcoxon signed-rank test on per-prompt rewards ``{prompt id: reward}`` of two methods.

    ``alternative="greater"`` tests H1: the method's reward is greater than the baseline's (the
    differences method - baseline are shifted above zero). Only prompts present in both are paired;
    the others are counted in ``n_dropped``. When every difference is zero the p-value is 1.0 (no
    evidence of any difference).

    Zero differences (e.g. two greedy methods writing the same response) are counted in ``n_zero`` and, by
    default, dropped as in Wilcoxon's original test (``zero_method="wilcox"``: the test conditions on the
    non-zero differences, as the paper's tables do). ``zero_method="pratt"`` (Pratt 1959) ranks them with the
    others and gives their ranks to neither side, so many ties at zero pull the p-value towards 1 instead of
    vanishing; ``pargs study`` uses it. Both are scipy's ``wilcoxon`` (exact for up to 50 pairs without ties,
    else the normal approximation, whose mean and variance count only the non-zero ranks).
    """
    common = sorted(set(method) & set(baseline))
    if not common:
        raise ValueError(f"{method_name} and {baseline_name} share no prompt ids: nothing to pair")
    dropped = len(set(method) ^ set(baseline))
    diffs = [method[k] - baseline[k] for k in common]
    relation = {"greater": ">", "less": "<", "two-sided": "!="}[alternative]
    hypothesis = f"H1: reward({method_name}) {relation} reward({baseline_name})"
    zeros = sum(d == 0 for d in diffs)
    if zeros == len(diffs):
        return PairedTest(0.0, 1.0, len(common), dropped, alternative, hypothesis, zeros)
    result = wilcoxon(diffs, zero_method=zero_method, alternative=alternative)
    return PairedTest(
        float(result.statistic), float(result.pvalue), len(common), dropped, alternative, hypothesis, zeros
    )


@dataclass(frozen=True)
class McNemarTest:
    """The result of :func:`mcnemar` or :func:`pooled_mcnemar`."""

    a_only: int  #: items A gets right and B gets wrong (discordant)
    b_only: int  #: items B gets right and A gets wrong (discordant)
    n_items: int  #: items both were judged on (concordant ones included)
    p_value: float  #: exact binomial p-value of ``a_only`` out of ``a_only + b_only`` under H0: p = 1/2
    alternative: str  #: "greater", "less" or "two-sided"
    hypothesis: str  #: the alternative hypothesis in words


def _mcnemar(a_only: int, b_only: int, n_items: int, alternative: Alternative, a_name: str, b_name: str) -> McNemarTest:
    relation = {"greater": ">", "less": "<", "two-sided": "!="}[alternative]
    hypothesis = f"H1: P(correct | {a_name}) {relation} P(correct | {b_name})"
    n = a_only + b_only
    p = 1.0 if n == 0 else float(binomtest(a_only, n, 0.5, alternative=alternative).pvalue)
    return McNemarTest(a_only, b_only, n_items, p, alternative, hypothesis)


def mcnemar(
    a_correct: Sequence[bool],
    b_correct: Sequence[bool],
    alternative: Alternative = "two-sided",
    a_name: str = "A",
    b_name: str = "B",
) -> McNemarTest:
    """McNemar's exact test: are A and B right equally often on the same items?

    ``a_correct[i]`` / ``b_correct[i]`` say whether A / B got item i right. Only the discordant items
    count: under H0 (equal accuracy) each is A's win with probability 1/2, so the number of A-only
    items is Binomial(a_only + b_only, 1/2) and the p-value is scipy's exact ``binomtest`` on it
    (``alternative="greater"``: A is right more often). With no discordant item the p-value is 1.0.
    """
    if len(a_correct) != len(b_correct):
        raise ValueError(
            f"{a_name} and {b_name} must be judged on the same items: {len(a_correct)} vs {len(b_correct)} outcomes"
        )
    a_only = sum(bool(a) and not bool(b) for a, b in zip(a_correct, b_correct))
    b_only = sum(bool(b) and not bool(a) for a, b in zip(a_correct, b_correct))
    return _mcnemar(a_only, b_only, len(a_correct), alternative, a_name, b_name)


def pooled_mcnemar(
    tests: Sequence[McNemarTest],
    alternative: Alternative = "two-sided",
    a_name: str = "A",
    b_name: str = "B",
) -> McNemarTest:
    """One McNemar test across seeds: the discordant counts of the per-seed tests are added, then tested.

    Why pooling rather than combining per-seed p-values (Fisher, Stouffer): each seed's A-only count
    is Binomial(n_s, 1/2) under H0, and the seeds are independent, so the sum is exactly
    Binomial(sum n_s, 1/2): the pooled test stays exact, while Fisher's and Stouffer's rules assume
    continuous p-values and are off for the few, discrete discordant counts one seed gives. Pooling
    weighs each seed by its discordant items, which is the information it holds.

    What it tests: H0 "in every seed, the two trained models are equally accurate on held-out
    pairs". It does not model how much retraining moves the models; report the per-seed tests next
    to it, so a result driven by one seed is visible.
    """
    return _mcnemar(
        sum(t.a_only for t in tests),
        sum(t.b_only for t in tests),
        sum(t.n_items for t in tests),
        alternative,
        a_name,
        b_name,
    )
