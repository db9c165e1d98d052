"""Evaluation metrics as plain functions (no Lightning): used by ``predict``, ``report`` and ``sweep``.

The Monte Carlo ground truth of prefix preferences (:mod:`pargs.metrics.prefix_values`,
:mod:`pargs.metrics.ground_truth_agreement`) decodes, so it imports :mod:`pargs.decoding`; it is imported from
its own modules, not from this package, whose other metrics the decoding rules use (FLOPs).
"""

from pargs.metrics.diversity import diversity, pairwise_rouge_l
from pargs.metrics.flops import (
    DEBERTA_V3_LARGE,
    GPT2_LARGE,
    LLAMA2_7B,
    Shape,
    flops_per_token,
    overhead_ratio,
    shape_of,
)
from pargs.metrics.judge import LocalLMJudge, WinTie, win_tie_rate
from pargs.metrics.prefix_agreement import agreement, pair_prefix_scores, prefix_agreement
from pargs.metrics.reward_stats import mean_se, per_prompt_means, reward_summary
from pargs.metrics.runtime import time_per_token, time_per_token_se
from pargs.metrics.significance import McNemarTest, PairedTest, mcnemar, paired_wilcoxon, pooled_mcnemar
from pargs.metrics.text_overlap import corpus_bleu, rouge_l, sentence_bleu

__all__ = [
    "DEBERTA_V3_LARGE",
    "GPT2_LARGE",
    "LLAMA2_7B",
    "LocalLMJudge",
    "McNemarTest",
    "PairedTest",
    "Shape",
    "WinTie",
    "agreement",
    "corpus_bleu",
    "diversity",
    "flops_per_token",
    "mcnemar",
    "mean_se",
    "overhead_ratio",
    "pair_prefix_scores",
    "paired_wilcoxon",
    "pairwise_rouge_l",
    "per_prompt_means",
    "pooled_mcnemar",
    "prefix_agreement",
    "reward_summary",
    "rouge_l",
    "sentence_bleu",
    "shape_of",
    "time_per_token",
    "time_per_token_se",
    "win_tie_rate",
]
