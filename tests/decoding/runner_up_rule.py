"""A decoding rule in one file, as ``pargs/decoding/registry.py`` describes: always the runner-up token.

Importing this module registers kind ``runner_up``; a method then says ``{name: runner-up, kind: runner_up}``.
"""

from __future__ import annotations

from torch import Tensor

from pargs.decoding.methods import DecodeMethod
from pargs.decoding.registry import register
from pargs.decoding.rules.base import TokenRule
from pargs.decoding.scorer import Scorer
from pargs.metrics.flops import Shape


@register("runner_up")
class RunnerUp(TokenRule):
    """Take the policy's second most likely token at every step (a rule no other kind can express)."""

    def step(self, method: DecodeMethod, logp: Tensor, seeds: Tensor, step: int, scorer: Scorer | None) -> Tensor:
        return logp.topk(2, dim=-1).indices[:, 1]

    def flops(
        self,
        method: DecodeMethod,
        lm: Shape,
        rm: Shape | None,
        prompt_tokens: int,
        new_tokens: int,
        scoring: str = "cached",
    ) -> int:
        return lm.span_flops(prompt_tokens, new_tokens)
