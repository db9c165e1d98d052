"""Diversity: mean pairwise ROUGE-L F1 among the samples of one prompt (lower is more diverse).

The paper draws 10 samples per prompt and averages ROUGE-L over all 45 pairs, then over prompts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations

from rouge_score import rouge_scorer

from pargs.metrics.reward_stats import mean_se

_ROUGE = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def pairwise_rouge_l(samples: Sequence[str]) -> float:
    """Mean ROUGE-L F1 over all unordered pairs of ``samples`` (needs at least two)."""
    if len(samples) < 2:
        raise ValueError("pairwise ROUGE-L needs at least two samples")
    scores = [_ROUGE.score(a, b)["rougeL"].fmeasure for a, b in combinations(samples, 2)]
    return sum(scores) / len(scores)


def diversity(samples_per_prompt: Mapping[str, Sequence[str]]) -> tuple[float, float, int]:
    """``(mean, SE, n prompts)`` of per-prompt pairwise ROUGE-L, over prompts with two or more samples."""
    per_prompt = [pairwise_rouge_l(s) for s in samples_per_prompt.values() if len(s) >= 2]
    if not per_prompt:
        raise ValueError("no prompt has two or more samples: diversity needs several samples per prompt")
    mean, se = mean_se(per_prompt)
    return mean, se, len(per_prompt)
