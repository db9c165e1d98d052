"""Wilcoxon signed-rank test of one method against a baseline, paired by prompt (the paper's Tables 9-10)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from scipy.stats import wilcoxon

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


def paired_wilcoxon(
    method: Mapping[str, float], baseline: Mapping[str, float], alternative: Alternative = "greater",
    method_name: str = "method", baseline_name: str = "baseline",
) -> PairedTest:
    """Wilcoxon signed-rank test on per-prompt rewards ``{prompt id: reward}`` of two methods.

    ``alternative="greater"`` tests H1: the method's reward is greater than the baseline's (the
    differences method - baseline are shifted above zero). Only prompts present in both are paired;
    the others are counted in ``n_dropped``. When every difference is zero the p-value is 1.0 (no
    evidence of any difference). Zero differences are dropped as in Wilcoxon's original test
    (scipy's ``zero_method="wilcox"``).
    """
    common = sorted(set(method) & set(baseline))
    if not common:
        raise ValueError(f"{method_name} and {baseline_name} share no prompt ids: nothing to pair")
    dropped = len(set(method) ^ set(baseline))
    diffs = [method[k] - baseline[k] for k in common]
    relation = {"greater": ">", "less": "<", "two-sided": "!="}[alternative]
    hypothesis = f"H1: reward({method_name}) {relation} reward({baseline_name})"
    if all(d == 0 for d in diffs):
        return PairedTest(0.0, 1.0, len(common), dropped, alternative, hypothesis)
    result = wilcoxon(diffs, zero_method="wilcox", alternative=alternative)
    return PairedTest(float(result.statistic), float(result.pvalue), len(common), dropped, alternative, hypothesis)
