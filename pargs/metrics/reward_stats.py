"""Average reward +- standard error, with samples of one prompt averaged first."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence


def mean_se(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error (sample standard deviation, ddof = 1, over sqrt(n)); SE is nan for n < 2."""
    n = len(values)
    if n == 0:
        raise ValueError("mean_se of no values")
    mean = math.fsum(values) / n
    if n < 2:
        return mean, math.nan
    var = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)


def per_prompt_means(rows: Iterable[tuple[str, float]]) -> dict[str, float]:
    """``{prompt id: mean of its values}`` from ``(prompt id, value)`` pairs (several samples per prompt)."""
    groups: dict[str, list[float]] = defaultdict(list)
    for pid, value in rows:
        groups[pid].append(value)
    return {pid: math.fsum(v) / len(v) for pid, v in groups.items()}


def reward_summary(per_prompt: Mapping[str, float]) -> tuple[float, float, int]:
    """``(mean, SE, n prompts)`` across prompts of per-prompt mean rewards.

    The SE treats prompts as the independent units: with several samples per prompt, averaging the
    samples first keeps correlated samples of one prompt from shrinking the error bar.
    """
    mean, se = mean_se(list(per_prompt.values()))
    return mean, se, len(per_prompt)
