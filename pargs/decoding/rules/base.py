"""What a decoding rule provides; register a subclass by kind (``pargs/decoding/registry.py`` says how)."""

from __future__ import annotations

from torch import Tensor
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from pargs.decoding.engine import Generation, Prompts, Stopping, decode_tokens, finished
from pargs.decoding.finite import WatchedScorer, raise_if_not_finite
from pargs.decoding.methods import DecodeMethod
from pargs.decoding.scorer import Scorer
from pargs.decoding.static_loop import static_decode_tokens
from pargs.metrics.flops import Shape


class DecodeRule:
    """How the methods of one kind decode a batch of prompts, and what that costs."""

    kind: str = ""  #: set by :func:`pargs.decoding.registry.register`
    uses_scorer: bool = False  #: whether the methods of this kind need a reward ``scorer``

    def check(self, method: DecodeMethod, vocab_size: int | None) -> None:
        """Raise a ConfigError naming the field when ``method`` does not suit this rule (None: size unknown)."""

    def decode(
        self,
        method: DecodeMethod,
        policy: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        batch: Prompts,
        scorer: Scorer | None,
        stop: Stopping,
    ) -> Generation:
        """One response per row of ``batch`` (with the token loop ``batch.path``)."""
        raise NotImplementedError

    def why_not_static(self, method: DecodeMethod, scorer: Scorer | None) -> str | None:
        """Why ``method`` cannot run on the static (compiled) path with ``scorer``, or None when it can."""
        return f"rule {self.kind!r} does not say it can run on the static path (see pargs/decoding/registry.py)"

    def flops(
        self,
        method: DecodeMethod,
        lm: Shape,
        rm: Shape | None,
        prompt_tokens: int,
        new_tokens: int,
        scoring: str = "cached",
    ) -> int:
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

    #: whether ``step`` can run on the static path: device tensor operations only (no ``.item()``, ``.tolist()``,
    #: Python branches on tensor values), the same shapes every step, and ``step`` taken as an int or a 0-dim tensor
    static_step: bool = False

    def step(
        self, method: DecodeMethod, logp: Tensor, seeds: Tensor, step: int | Tensor, scorer: Scorer | None
    ) -> Tensor:
        """The next token of each live row from its ``[R, V]`` log-probabilities (``seeds``: ``[R]``).

        On the static path ``step`` is a 0-dim device tensor and finished rows stay in the batch.
        """
        raise NotImplementedError

    def why_not_static(self, method: DecodeMethod, scorer: Scorer | None) -> str | None:
        if not self.static_step:
            return (
                f"rule {self.kind!r} does not set static_step = True (its step may read values on the host; "
                "see pargs/decoding/registry.py)"
            )
        if self.uses_scorer and scorer is not None:
            return scorer.why_not_static()
        return None

    def decode(
        self,
        method: DecodeMethod,
        policy: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        batch: Prompts,
        scorer: Scorer | None,
        stop: Stopping,
    ) -> Generation:
        scorer = scorer if self.uses_scorer else None
        if batch.path == "eager":
            watched = WatchedScorer(scorer) if scorer is not None else None

            def pick(logp: Tensor, seeds: Tensor, step: int) -> Tensor:
                return self.step(method, logp, seeds, step, watched)

            token_ids, reasons = decode_tokens(policy, tokenizer, batch, pick, watched, stop)
            if watched is not None:
                raise_if_not_finite(method.name, watched.bad)
            return finished(tokenizer, token_ids, reasons, stop)
        token_ids, reasons, compile_seconds = static_decode_tokens(
            self, method, policy, batch, scorer, stop, batch.path
        )
        gen = finished(tokenizer, token_ids, reasons, stop)
        gen.compile_seconds = compile_seconds
        return gen
