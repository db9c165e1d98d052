"""The general scoring path: decode each candidate continuation to text and score it with any reward.

Works for every reward (a reward model with its own tokenizer, an encoder RM, the oracle) at the cost
of re-encoding ``B * k`` texts per step. A causal RM that shares the policy's tokenizer should use
:class:`~pargs.decoding.cached_scorer.CachedCausalScorer` instead; both give the same rewards.
"""

from __future__ import annotations

import torch
from torch import Tensor
from transformers import PreTrainedTokenizerBase

from pargs.decoding.scorer import Responses, Scorer
from pargs.decoding.text_reward import TextReward
from pargs.models.encoding import decode_response


class TextScorer(Scorer):
    """Scores ``prompt + decode(response ids so far + [v])`` with a :class:`TextReward`."""

    def __init__(self, reward: TextReward, policy_tokenizer: PreTrainedTokenizerBase) -> None:
        self.reward = reward
        self.tokenizer = policy_tokenizer
        self.eos_id = policy_tokenizer.eos_token_id
        self.prompts: list[str] = []
        self.generated: list[list[int]] = []
        self._candidates: Tensor | None = None

    def begin(self, prompts: list[str], prompt_ids: Tensor, prompt_mask: Tensor) -> None:
        self.prompts = list(prompts)
        self.generated = [[] for _ in prompts]

    def score_candidates(self, candidates: Tensor) -> Tensor:
        self._candidates = candidates
        cands = candidates.tolist()
        prompts, texts, complete = [], [], []
        for prompt, prefix, row in zip(self.prompts, self.generated, cands):
            for v in row:
                prompts.append(prompt)
                texts.append(decode_response(self.tokenizer, prefix + [v]))
                complete.append(v == self.eos_id)
        rewards = self.reward(prompts, texts, complete)
        return rewards.to(candidates.device, torch.float32).view(candidates.shape)

    def advance(self, chosen: Tensor, tokens: Tensor) -> None:
        for prefix, token in zip(self.generated, tokens.tolist()):
            prefix.append(token)

    def advance_outside(self, tokens: Tensor) -> None:
        self.advance(None, tokens)  # the texts only need the token, not which candidate it was

    def keep_rows(self, rows: Tensor) -> None:
        idx = rows.tolist()
        self.prompts = [self.prompts[i] for i in idx]
        self.generated = [self.generated[i] for i in idx]

    def score_responses(self, responses: Responses) -> Tensor:
        return self.reward(responses.prompts, responses.texts, responses.complete).float()
