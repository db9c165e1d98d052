"""``best_of_n``: ``n`` responses per row by the ``sample`` rule, the scorer keeps the best complete one."""

from __future__ import annotations

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from pargs.decoding.engine import Generation, Prompts, Stopping
from pargs.decoding.finite import raise_if_not_finite
from pargs.decoding.methods import DecodeMethod
from pargs.decoding.registry import register
from pargs.decoding.rules.base import DecodeRule
from pargs.decoding.rules.sample import Sample
from pargs.decoding.scorer import Responses, Scorer
from pargs.metrics.flops import Shape


@register("best_of_n")
class BestOfN(DecodeRule):
    """Sample n candidates per row (each with its own seed derived from the row's), score each whole response
    once, return the highest-scoring one and its score."""

    uses_scorer = True

    def why_not_static(self, method: DecodeMethod, scorer: Scorer | None) -> str | None:
        return None  # the candidates are sample rows; the scorer reads them afterwards, on the host

    def decode(
        self,
        method: DecodeMethod,
        policy: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        batch: Prompts,
        scorer: Scorer | None,
        stop: Stopping,
    ) -> Generation:
        n = method.n
        rows = batch.repeat(n)
        cands = Sample().decode(method, policy, tokenizer, rows, None, stop)
        scores = scorer.score_responses(
            Responses(rows.texts, rows.ids, rows.mask, cands.token_ids, cands.texts, cands.complete)
        ).view(len(batch.texts), n)
        raise_if_not_finite(method.name, ~torch.isfinite(scores).all(dim=1))  # the scores are read below anyway
        pick = [i * n + int(b) for i, b in enumerate(scores.argmax(dim=1))]
        return Generation(
            [cands.token_ids[i] for i in pick],
            [cands.texts[i] for i in pick],
            [cands.stop_reasons[i] for i in pick],
            scores=scores.max(dim=1).values.cpu(),
            tokens_generated=cands.tokens_generated,
            compile_seconds=cands.compile_seconds,
        )

    def flops(
        self,
        method: DecodeMethod,
        lm: Shape,
        rm: Shape | None,
        prompt_tokens: int,
        new_tokens: int,
        scoring: str = "cached",
    ) -> int:
        """``n`` responses of this one's length by the policy: ``n`` times plain decoding (the paper's convention,
        :mod:`pargs.metrics.flops`). The RM's one pass over each finished response is left out, as the prompt
        prefill is for every method; ``rm`` and ``scoring`` do not change the count."""
        return method.n * lm.span_flops(prompt_tokens, new_tokens)
