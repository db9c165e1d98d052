"""Evaluation metrics as plain functions (no Lightning): used by ``predict``, ``report`` and ``sweep``."""

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
from pargs.metrics.runtime import time_per_token
from pargs.metrics.significance import PairedTest, paired_wilcoxon
from pargs.metrics.text_overlap import corpus_bleu, rouge_l, sentence_bleu

__all__ = [
    "DEBERTA_V3_LARGE", "GPT2_LARGE", "LLAMA2_7B", "LocalLMJudge", "PairedTest", "Shape", "WinTie", "agreement",
    "corpus_bleu", "diversity", "flops_per_token", "mean_se", "overhead_ratio", "pair_prefix_scores",
    "paired_wilcoxon", "pairwise_rouge_l", "per_prompt_means", "prefix_agreement", "reward_summary", "rouge_l",
    "sentence_bleu", "shape_of", "time_per_token", "win_tie_rate",
]
