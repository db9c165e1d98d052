"""ROUGE-L and BLEU of responses against references (rouge-score and sacrebleu, the reference libraries)."""

from __future__ import annotations

from collections.abc import Sequence

import sacrebleu
from rouge_score import rouge_scorer

_ROUGE = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def rouge_l(response: str, references: Sequence[str]) -> float:
    """ROUGE-L F1 of one response: the best over its references (0 when there are none)."""
    return max((_ROUGE.score(ref, response)["rougeL"].fmeasure for ref in references), default=0.0)


def sentence_bleu(response: str, references: Sequence[str]) -> float:
    """SacreBLEU sentence BLEU (0-100, exponential smoothing) of one response against all its references."""
    if not references:
        return 0.0
    return float(sacrebleu.sentence_bleu(response, list(references)).score)


def corpus_bleu(responses: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """SacreBLEU corpus BLEU (0-100). Responses with fewer references than the most any has reuse
    their first reference for the missing streams (sacrebleu needs equally many per response).

    Texts are scored as given (``force=True``: no warning per call when they look tokenized, as the
    synthetic task's text does; the score is the same either way)."""
    pairs = [(r, list(refs)) for r, refs in zip(responses, references) if refs]
    if not pairs:
        return 0.0
    width = max(len(refs) for _, refs in pairs)
    streams = [[refs[i] if i < len(refs) else refs[0] for _, refs in pairs] for i in range(width)]
    return float(sacrebleu.corpus_bleu([r for r, _ in pairs], streams, force=True).score)
