"""What a decoding rule provides; register a subclass by kind (``pargs/decoding/registry.py`` says how)."""

from __future__ import annotations

from torch import Tensor
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from pargs.decoding.engine import Generation, Prompts, Stopping, decode_tokens, finished
from pargs.decoding.methods import DecodeMethod
from pargs.decoding.scorer import Scorer
from pargs.metrics.flops import Shape


class DecodeRule:
    """How the methods of one kind decode a batch of prompts, and what that costs."""

    kind: str = ""  #: set by :func:`pargs.decoding.registry.register`
    uses_scorer: bool = False  #: whether the methods of this kind need a reward ``scorer``

    def check(self, method: DecodeMethod, vocab_size: int | None) -> None:
        """Raise a ConfigError naming the field when ``method`` does not suit this rule (None: size unknown)."""

    def decode(self, method: DecodeMethod, policy: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
               batch: Prompts, scorer: Scorer | None, stop: Stopping) -> Generation:
        """One response per row of ``batch``."""
        raise NotImplementedError

    def flops(self, method: DecodeMethod, lm: Shape, rm: Shape | None, prompt_tokens: int, new_tokens: int,
              scoring: str = "cached") -> int:
        """Estimated FLOPs of one response of ``new_tokens`` after ``prompt_tokens``, under the one convention
        of :mod:`pargs.metrics.flops` (the paper's: prompt prefill excluded, k RM token-forwards a step for a
        guided method, n responses for Best-of-N, the RM's scoring of finished responses excluded).

        ``rm`` is the scorer's shape (None: a reward that costs no model FLOPs, such as the oracle);
        ``scoring`` is ``cached`` (pargs' cached causal scorer) or ``from_scratch`` (the text path,
        which re-encodes what it scores); the convention counts both alike.
        """
        raise NotImplementedError


class TokenRule(DecodeRule):
    """A rule that picks each row's next token from the policy's log-probabilities, one step at a time."""

    def step(self, method: DecodeMethod, logp: Tensor, seeds: Tensor, step: int, scorer: Scorer | None) -> Tensor:
        """The next token of each live row from its ``[R, V]`` log-probabilities (``seeds``: ``[R]``)."""
        raise NotImplementedError

    def decode(self, method: DecodeMethod, policy: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
               batch: Prompts, scorer: Scorer | None, stop: Stopping) -> Generation:
        scorer = scorer if self.uses_scorer else None

        def pick(logp: Tensor, seeds: Tensor, step: int) -> Tensor:
            return self.step(method, logp, seeds, step, scorer)

        token_ids, reasons = decode_tokens(policy, tokenizer, batch, pick, scorer, stop)
        return finished(tokenizer, token_ids, reasons, stop)
