"""The scorer interface: r(x, y + v) for the k candidates of a step, and r(x, y) for whole responses.

A scorer follows the decoding loop: :meth:`begin` with the prompts, then at each step
:meth:`score_candidates` and :meth:`advance` with the chosen candidate, and :meth:`keep_rows` when
finished rows leave the batch. Implementations: :class:`~pargs.decoding.cached_scorer.CachedCausalScorer`
(a causal RM sharing the policy's tokenizer, with its own KV cache) and
:class:`~pargs.decoding.text_scorer.TextScorer` (any text reward: another tokenizer, an encoder RM,
the synthetic oracle). Both are tested to equal scoring every candidate sequence from scratch.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from torch import Tensor


@dataclass
class Responses:
    """Complete (or cut-off) responses to score, one per row, with what each scorer may need."""

    prompts: list[str]  #: prompt texts
    prompt_ids: Tensor  #: ``[R, P]`` left-padded prompt ids
    prompt_mask: Tensor  #: ``[R, P]``
    token_ids: list[list[int]]  #: response ids, EOS included when the response ended with it
    texts: list[str]  #: decoded response texts
    complete: list[bool]  #: whether each response ended with EOS (or a stop string)


class Scorer(ABC):
    """Rewards of prefixes during decoding and of whole responses after it."""

    @abstractmethod
    def begin(self, prompts: list[str], prompt_ids: Tensor, prompt_mask: Tensor) -> None:
        """Start a batch of rows (left-padded prompt ids of the policy's tokenizer)."""

    @abstractmethod
    def score_candidates(self, candidates: Tensor) -> Tensor:
        """``[B, k]`` rewards r(x, y + v) of appending each candidate token ``candidates[b, j]``."""

    @abstractmethod
    def advance(self, chosen: Tensor, tokens: Tensor) -> None:
        """Row b continues with candidate ``chosen[b]`` (token id ``tokens[b]``) of the last scoring."""

    def advance_outside(self, tokens: Tensor) -> None:
        """Row b continues with token ``tokens[b]``, which need not be among the candidates of the last scoring.

        For callers that do not choose the token themselves (a Hugging Face ``generate`` loop pads finished
        rows, or a later logits processor overrides the choice). A scorer that cannot take in an arbitrary
        token leaves this unimplemented.
        """
        raise NotImplementedError(f"{type(self).__name__} only continues with one of its scored candidates")

    def why_not_static(self) -> str | None:
        """Why this scorer cannot follow the static (compiled) decoding path, or None when it can.

        On that path a step runs on the device with fixed shapes and no host synchronisation, and may be
        captured (``pargs/decoding/static_loop.py``); a scorer that can follow it gives :meth:`static_twin`.
        """
        return f"{type(self).__name__} scores on the host, which a captured step cannot include"

    def static_twin(self, slots: int) -> Scorer:
        """A scorer of the same reward whose state lives in fixed buffers of ``slots`` columns (static path).

        The twin is kept with the captured step and reused by later calls of the same shape, so it must
        depend only on :attr:`static_key`.
        """
        raise NotImplementedError(f"{type(self).__name__} has no static twin")

    @property
    def static_key(self) -> object:
        """What :meth:`static_twin` depends on (a captured step is reused for scorers with the same key)."""
        return self

    @abstractmethod
    def keep_rows(self, rows: Tensor) -> None:
        """Only ``rows`` (indices into the current batch) continue."""

    @abstractmethod
    def score_responses(self, responses: Responses) -> Tensor:
        """``[R]`` rewards of whole responses (Best-of-N selection)."""
