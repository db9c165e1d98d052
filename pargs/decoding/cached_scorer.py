"""Fast scoring with a causal reward model that shares the policy's tokenizer.

The RM keeps its own KV cache of ``prompt + response so far``. At each step the k candidate tokens
are appended as one chunk under a 4D mask that lets each candidate see only the prefix and itself,
so one forward pass of k tokens (not k passes over the whole sequence) gives every r(x, y + v); the
chosen candidate's keys and values are then moved into place and the others dropped, so no second
forward pass is needed.

With ``slots`` the cache is a :class:`~pargs.decoding.static_stream.StaticStream` of that many columns
(the static decoding path, ``pargs/decoding/static_loop.py``); rows then never leave the batch.
"""

from __future__ import annotations

import torch
from torch import Tensor
from transformers import PreTrainedModel

from pargs.decoding.scorer import Responses, Scorer
from pargs.decoding.static_stream import StaticStream
from pargs.decoding.stream import CausalStream, why_no_candidate_chunks
from pargs.errors import ConfigError
from pargs.models.encoding import pad_batch
from pargs.models.reward_model import is_causal_reward_model, sequence_rewards, token_rewards


class CachedCausalScorer(Scorer):
    """r(x, y + v) for k candidates per step from one incremental forward of a causal RM."""

    def __init__(self, model: PreTrainedModel, slots: int | None = None) -> None:
        if not is_causal_reward_model(model):
            raise ConfigError(
                f"{type(model).__name__} is not a causal reward model with a per-position head; "
                "use the text scorer (scorer mode 'text') for encoder reward models"
            )
        reason = why_no_candidate_chunks(model.config)
        if reason:
            raise ConfigError(
                f"{type(model).__name__} cannot use the cached scorer: {reason}; use the text scorer "
                "(scorer mode 'text')"
            )
        self.model = model
        if slots is None:
            self.stream = CausalStream(self._forward, model.config, model.dtype)
        else:
            self.stream = StaticStream(self._forward, model.config, model.dtype, slots)
        self._k = 0

    def _forward(self, ids: Tensor, mask: Tensor, positions: Tensor, cache) -> tuple[Tensor, object]:
        return token_rewards(self.model, ids, mask, positions, cache=cache, use_cache=True)

    @torch.no_grad()
    def begin(self, prompts: list[str], prompt_ids: Tensor, prompt_mask: Tensor) -> None:
        self.stream.prefill(prompt_ids, prompt_mask)

    @torch.no_grad()
    def score_candidates(self, candidates: Tensor) -> Tensor:
        self._k = candidates.shape[1]
        return self.stream.try_candidates(candidates)

    @torch.no_grad()
    def advance(self, chosen: Tensor, tokens: Tensor) -> None:
        self.stream.keep_candidate(chosen, self._k)

    @torch.no_grad()
    def advance_outside(self, tokens: Tensor) -> None:
        # the candidates' slots go; the tokens are appended by one more forward of one token per row
        self.stream.drop_candidates(self._k)
        self.stream.append(tokens)

    def keep_rows(self, rows: Tensor) -> None:
        self.stream.keep_rows(rows)

    def why_not_static(self) -> str | None:
        return None  # the constructor already refused models whose candidate chunks would be wrong

    def static_twin(self, slots: int) -> CachedCausalScorer:
        return CachedCausalScorer(self.model, slots=slots)

    @property
    def static_key(self) -> object:
        return self.model

    @torch.no_grad()
    def score_responses(self, responses: Responses) -> Tensor:
        device = responses.prompt_ids.device
        rows = []
        for ids, mask, resp in zip(responses.prompt_ids.tolist(), responses.prompt_mask.tolist(), responses.token_ids):
            rows.append([t for t, m in zip(ids, mask) if m] + list(resp))
        pad = self.model.config.pad_token_id if self.model.config.pad_token_id is not None else 0
        ids, mask = pad_batch(rows, pad, side="right")
        return sequence_rewards(self.model, ids.to(device), mask.to(device))
