"""Evaluation metrics as plain functions (no Lightning): used by ``predict``, ``report`` and ``sweep``."""

from pargs.metrics.diversity import diversity, pairwise_rouge_l
from pargs.metrics.flops import (
    DEBERTA_V3_LARGE,
    GPT2_LARGE,
    LLAMA2_7B,
    Shape,
    decode_flops,
    flops_per_token,
    overhead_ratio,
    shape_of,
)
from pargs.metrics.ground_truth_agreement import (
    AgreementSummary,
    PairOutcome,
    compare_rms,
    ground_truth_table,
    rm_agreement,
    summarize,
)
from pargs.metrics.judge import LocalLMJudge, WinTie, win_tie_rate
from pargs.metrics.prefix_agreement import agreement, pair_prefix_scores, prefix_agreement
from pargs.metrics.prefix_values import GroundTruth, PrefixValue, monte_carlo_values, prefix_values
from pargs.metrics.reward_stats import mean_se, per_prompt_means, reward_summary
from pargs.metrics.runtime import time_per_token
from pargs.metrics.significance import McNemarTest, PairedTest, mcnemar, paired_wilcoxon, pooled_mcnemar
from pargs.metrics.text_overlap import corpus_bleu, rouge_l, sentence_bleu

__all__ = [
    "DEBERTA_V3_LARGE", "GPT2_LARGE", "LLAMA2_7B", "AgreementSummary", "GroundTruth", "LocalLMJudge", "McNemarTest",
    "PairOutcome", "PairedTest", "PrefixValue", "Shape", "WinTie", "agreement", "compare_rms", "corpus_bleu",
    "decode_flops", "diversity", "flops_per_token", "ground_truth_table", "mcnemar", "mean_se", "monte_carlo_values",
    "overhead_ratio", "pair_prefix_scores", "paired_wilcoxon", "pairwise_rouge_l", "per_prompt_means",
    "pooled_mcnemar", "prefix_agreement", "prefix_values", "reward_summary", "rm_agreement", "rouge_l",
    "sentence_bleu", "shape_of", "summarize", "time_per_token", "win_tie_rate",
]
