"""A reward that is NaN or infinite stops decoding: the tokens a guided rule picks from it are garbage.

``log pi + beta * NaN`` is NaN for every candidate, and argmax or sampling over NaN scores picks a token without
a word. :class:`WatchedScorer` records, per row of the batch, whether any reward it passed on was not finite;
:func:`raise_if_not_finite` reads the flags once, after the token loop, and raises :class:`NonFiniteScores` naming
the rows. The flags stay on the device while decoding: no host synchronisation per step, so the static path
(captured or compiled) keeps its one fixed-shape step (the flags are one more in-place ``logical_or``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from pargs.decoding.scorer import Responses, Scorer
from pargs.errors import ConfigError


class NonFiniteScores(ConfigError):
    """A scorer gave a non-finite reward while decoding ``rows`` (indices into the call's prompts)."""

    def __init__(self, method: str, rows: list[int]) -> None:
        self.method, self.rows = method, rows
        super().__init__(
            f"decoding method {method!r}: its scorer returned a non-finite reward (NaN or inf) for row(s) {rows} "
            "of the batch, so the tokens chosen from it mean nothing; check the reward model"
        )


def raise_if_not_finite(method: str, bad: Tensor) -> None:
    """Raise :class:`NonFiniteScores` for the rows flagged in ``bad`` (``[R]`` bool; one read of the device)."""
    rows = bad.nonzero().flatten().tolist()
    if rows:
        raise NonFiniteScores(method, rows)


class WatchedScorer(Scorer):
    """``scorer``, with a per-row flag of a non-finite reward among its candidates' rewards.

    ``fixed_rows``: the rows never leave the batch (the static path), so a flag is one in-place ``logical_or``;
    otherwise :meth:`keep_rows` maps the live rows to the rows of :meth:`begin`.
    """

    def __init__(self, scorer: Scorer, fixed_rows: bool = False) -> None:
        self.scorer, self.fixed_rows = scorer, fixed_rows
        self.bad: Tensor | None = None  #: ``[R]`` rows of :meth:`begin` that saw a non-finite reward
        self._live: Tensor | None = None  #: which of those rows the current batch holds

    def begin(self, prompts: list[str], prompt_ids: Tensor, prompt_mask: Tensor) -> None:
        rows = prompt_ids.shape[0]
        if self.bad is None or self.bad.shape[0] != rows:  # a captured step keeps reading the same buffer
            self.bad = torch.zeros(rows, dtype=torch.bool, device=prompt_ids.device)
        self.bad.zero_()
        self._live = None if self.fixed_rows else torch.arange(rows, device=prompt_ids.device)
        self.scorer.begin(prompts, prompt_ids, prompt_mask)

    def score_candidates(self, candidates: Tensor) -> Tensor:
        rewards = self.scorer.score_candidates(candidates)
        flags = ~torch.isfinite(rewards).all(dim=-1)
        if self._live is None:
            self.bad.logical_or_(flags)
        else:
            self.bad[self._live] |= flags
        return rewards

    def advance(self, chosen: Tensor, tokens: Tensor) -> None:
        self.scorer.advance(chosen, tokens)

    def advance_outside(self, tokens: Tensor) -> None:
        self.scorer.advance_outside(tokens)

    def keep_rows(self, rows: Tensor) -> None:
        if self._live is not None:
            self._live = self._live[rows]
        self.scorer.keep_rows(rows)

    def score_responses(self, responses: Responses) -> Tensor:
        return self.scorer.score_responses(responses)

    def why_not_static(self) -> str | None:
        return self.scorer.why_not_static()

    def static_twin(self, slots: int) -> Scorer:
        return WatchedScorer(self.scorer.static_twin(slots), fixed_rows=True)

    @property
    def static_key(self) -> object:
        return self.scorer.static_key
