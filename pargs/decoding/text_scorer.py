"""The general scoring path: score each candidate continuation from scratch, with any reward.

Works for every reward (a reward model with its own tokenizer, an encoder RM, the oracle) at the cost
of scoring ``B * k`` whole sequences per step. A reward reads a candidate in one of two ways:

- **ids**: a :class:`~pargs.decoding.text_reward.ModelReward` in the "concat" format whose tokenizer
  has the policy's vocabulary (:meth:`~pargs.decoding.text_reward.ModelReward.reads_ids_of`) reads
  prompt ids + the response ids so far + the candidate, never a re-encoding of their text, so it
  gets the rewards of scoring those ids from scratch. This serves the RMs sharing the tokenizer that
  the cached scorer cannot (sliding-window RMs, encoder RMs, ``mode: text``).
- **text**: any other reward reads ``prompt + decode(response ids so far + [v])``. A candidate that
  stops inside a multibyte character (byte-level BPE, byte fallback) is read up to its last finished
  character (:func:`~pargs.models.partial_characters.finished_text`): the reward never sees the
  U+FFFD of an unfinished character, and a candidate that finishes no character gets its prefix's
  reward (the same text). Candidates of a row that read the same text are scored once.

A causal RM that shares the policy's tokenizer should use
:class:`~pargs.decoding.cached_scorer.CachedCausalScorer` instead; it gives the rewards of the ids way.
"""

from __future__ import annotations

import torch
from torch import Tensor
from transformers import PreTrainedTokenizerBase

from pargs.decoding.scorer import Responses, Scorer
from pargs.decoding.text_reward import ModelReward, TextReward
from pargs.models.encoding import decode_response, encode_prompt


class TextScorer(Scorer):
    """Scores ``prompt + response ids so far + [v]`` as ids or as text (see the module docstring)."""

    def __init__(self, reward: TextReward, policy_tokenizer: PreTrainedTokenizerBase) -> None:
        self.reward = reward
        self.tokenizer = policy_tokenizer
        self.eos_id = policy_tokenizer.eos_token_id
        self.reads_ids = isinstance(reward, ModelReward) and reward.reads_ids_of(policy_tokenizer)
        self._special = set(policy_tokenizer.all_special_ids)  # never part of a response's text, nor of its ids
        self.prompts: list[str] = []
        self.prompt_ids: list[list[int]] = []  # the ids way: prompts encoded by the RM's tokenizer
        self.generated: list[list[int]] = []  # response ids so far, special tokens left out

    def begin(self, prompts: list[str], prompt_ids: Tensor, prompt_mask: Tensor) -> None:
        self.prompts = list(prompts)
        self.prompt_ids = [encode_prompt(self.reward.tokenizer, p) for p in prompts] if self.reads_ids else []
        self.generated = [[] for _ in prompts]

    def _kept(self, ids: list[int]) -> list[int]:
        return [t for t in ids if t not in self._special]

    def score_candidates(self, candidates: Tensor) -> Tensor:
        cands = candidates.tolist()
        if self.reads_ids:
            prompts, responses, complete = [], [], []
            for prompt, prefix, row in zip(self.prompt_ids, self.generated, cands):
                for v in row:
                    prompts.append(prompt)
                    responses.append(prefix + self._kept([v]))
                    complete.append(v == self.eos_id)
            rewards = self.reward.score_ids(prompts, responses, complete)
        else:
            unique: dict[tuple[int, str, bool], int] = {}  # (row, text, complete) -> index of its score
            index = []
            for b, (prefix, row) in enumerate(zip(self.generated, cands)):
                for v in row:
                    key = (b, decode_response(self.tokenizer, prefix + [v]), v == self.eos_id)
                    index.append(unique.setdefault(key, len(unique)))
            keys = list(unique)
            scored = self.reward([self.prompts[b] for b, _, _ in keys], [t for _, t, _ in keys], [c for *_, c in keys])
            rewards = scored[torch.tensor(index, dtype=torch.long)]
        return rewards.to(candidates.device, torch.float32).view(candidates.shape)

    def advance(self, chosen: Tensor, tokens: Tensor) -> None:
        for prefix, token in zip(self.generated, tokens.tolist()):
            prefix.extend(self._kept([token]))

    def advance_outside(self, tokens: Tensor) -> None:
        self.advance(None, tokens)  # the texts only need the token, not which candidate it was

    def keep_rows(self, rows: Tensor) -> None:
        idx = rows.tolist()
        self.prompts = [self.prompts[i] for i in idx]
        self.prompt_ids = [self.prompt_ids[i] for i in idx] if self.reads_ids else []
        self.generated = [self.generated[i] for i in idx]

    def score_responses(self, responses: Responses) -> Tensor:
        """Whole responses: their ids (the ids way), or their texts, which end at a finished character."""
        if self.reads_ids:
            prompts = [encode_prompt(self.reward.tokenizer, p) for p in responses.prompts]
            ids = [self._kept(list(r)) for r in responses.token_ids]
            return self.reward.score_ids(prompts, ids, responses.complete).float()
        return self.reward(responses.prompts, responses.texts, responses.complete).float()
