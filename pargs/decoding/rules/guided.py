"""``guided``: score the policy's ``k`` most likely tokens with ``log pi_ref + beta * r`` and pick among them.

ARGS, PARGS, PARGS-G and CD-FUDGE are this rule with different rewards and greedy or sampled picks
(``PRESETS`` in ``pargs/decoding/methods.py``).
"""

from __future__ import annotations

from torch import Tensor

from pargs.decoding.methods import DecodeMethod
from pargs.decoding.noise import sample_from_scores
from pargs.decoding.registry import register
from pargs.decoding.rules.base import TokenRule
from pargs.decoding.scorer import Scorer
from pargs.errors import ConfigError
from pargs.metrics.flops import Shape


@register("guided")
class Guided(TokenRule):
    """Reward-guided decoding over the top-k candidates: argmax (``greedy``) or a draw from their softmax."""

    uses_scorer = True
    static_step = True

    def check(self, method: DecodeMethod, vocab_size: int | None) -> None:
        if vocab_size is not None and method.k > vocab_size:
            raise ConfigError(
                f"decoding method {method.name!r}: k={method.k} is larger than the vocabulary ({vocab_size} tokens)"
            )

    def step(
        self, method: DecodeMethod, logp: Tensor, seeds: Tensor, step: int | Tensor, scorer: Scorer | None
    ) -> Tensor:
        lp, cand = logp.topk(method.k, dim=-1)
        rewards = scorer.score_candidates(cand)
        scores = lp + method.beta * rewards.to(lp.dtype)
        if method.greedy:
            j = scores.argmax(dim=-1)
        else:
            j = sample_from_scores(scores / method.temperature, seeds, step, cand)
        tokens = cand.gather(1, j.unsqueeze(1)).squeeze(1)
        scorer.advance(j, tokens)
        return tokens

    def flops(
        self,
        method: DecodeMethod,
        lm: Shape,
        rm: Shape | None,
        prompt_tokens: int,
        new_tokens: int,
        scoring: str = "cached",
    ) -> int:
        """The policy's token plus k RM token-forwards a step, each candidate with the prefix as context: ``1 + k
        C_RM / C_LM`` times plain decoding (the paper's convention, :mod:`pargs.metrics.flops`). The text path
        (``scoring="from_scratch"``) re-encodes what it scores and really costs more; that shows in the measured
        time per token, not in this count, so that every method is counted one way."""
        if scoring not in ("cached", "from_scratch"):
            raise ValueError(f"scoring must be cached or from_scratch, got {scoring!r}")
        policy = lm.span_flops(prompt_tokens, new_tokens)
        if rm is None:  # the oracle costs no model FLOPs
            return policy
        return policy + method.k * rm.span_flops(prompt_tokens, new_tokens)
