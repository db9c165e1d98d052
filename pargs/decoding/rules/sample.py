"""``sample``: draw each token from the policy (``temperature``, ``top_k``, ``top_p``), or take the argmax."""

from __future__ import annotations

import torch
from torch import Tensor

from pargs.decoding.methods import DecodeMethod
from pargs.decoding.noise import sample_from_scores
from pargs.decoding.registry import register
from pargs.decoding.rules.base import TokenRule
from pargs.decoding.scorer import Scorer
from pargs.metrics.flops import Shape


@register("sample")
class Sample(TokenRule):
    """Plain decoding of the policy: greedy, top-k, nucleus, or the whole distribution."""

    static_step = True

    def step(
        self, method: DecodeMethod, logp: Tensor, seeds: Tensor, step: int | Tensor, scorer: Scorer | None
    ) -> Tensor:
        if method.greedy:
            return logp.argmax(dim=-1)
        scores = logp / method.temperature
        if method.top_k:
            scores, ids = scores.topk(method.top_k, dim=-1)
        else:
            ids = torch.arange(scores.shape[-1], device=scores.device).expand_as(scores)
        if method.top_p < 1.0:
            scores, order = scores.sort(dim=-1, descending=True)
            ids = ids.gather(-1, order)
            probs = scores.softmax(-1)
            drop = probs.cumsum(-1) - probs >= method.top_p  # the mass before this token already reaches top_p
            scores = scores.masked_fill(drop, float("-inf"))
        j = sample_from_scores(scores, seeds, step, ids)
        return ids.gather(1, j.unsqueeze(1)).squeeze(1)

    def flops(
        self,
        method: DecodeMethod,
        lm: Shape,
        rm: Shape | None,
        prompt_tokens: int,
        new_tokens: int,
        scoring: str = "cached",
    ) -> int:
        return lm.span_flops(prompt_tokens, new_tokens)  # the policy alone
