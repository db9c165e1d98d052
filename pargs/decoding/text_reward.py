"""Rewards of (prompt, response) texts: a Hugging Face reward model, or the synthetic oracle.

These are the evaluation rewards of the prediction loop and the general scoring path of guided
decoding (a reward model with another tokenizer, an encoder RM, the oracle).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

import torch
from torch import Tensor
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from pargs.errors import ConfigError
from pargs.models.encoding import encode_prompt, encode_response, pad_batch, same_vocabulary, truncate
from pargs.models.reward_model import sequence_rewards
from pargs.tasks.synthetic import oracle_reward

InputFormat = Literal["concat", "pair", "template"]


class TextReward(Protocol):
    """``reward(prompts, responses, complete) -> [N]`` float tensor."""

    def __call__(self, prompts: Sequence[str], responses: Sequence[str], complete: Sequence[bool]) -> Tensor: ...


class OracleReward:
    """The synthetic task's hidden oracle (it reads the text; ``complete`` is implied by a final '.')."""

    def __call__(
        self, prompts: Sequence[str], responses: Sequence[str], complete: Sequence[bool] | None = None
    ) -> Tensor:
        return torch.tensor([oracle_reward(p, r) for p, r in zip(prompts, responses)], dtype=torch.float32)


class ModelReward:
    """A sequence-classification reward model applied to text.

    Args:
        model: a reward model (``num_labels == 1``), causal or encoder.
        tokenizer: the reward model's tokenizer.
        input_format: ``"concat"``: prompt ids + response ids (+ EOS when the response is complete),
            the layout pargs trains its RMs on; ``"pair"``: ``tokenizer(prompt, response)``, the
            question/answer layout of encoder RMs such as OpenAssistant's DeBERTa; ``"template"``:
            ``template.format(prompt=..., response=...)`` encoded as one text.
        template: the format string for ``"template"``.
        batch_size: rows per forward pass.
        max_length: truncate inputs to this many tokens (prompt side first).
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        input_format: InputFormat = "concat",
        template: str = "{prompt}{response}",
        batch_size: int = 64,
        max_length: int | None = None,
    ) -> None:
        if input_format not in ("concat", "pair", "template"):
            raise ConfigError(f"input_format must be concat, pair or template, got {input_format!r}")
        self.model, self.tokenizer = model, tokenizer
        self.input_format, self.template = input_format, template
        self.batch_size, self.max_length = batch_size, max_length

    def _encode(self, prompt: str, response: str, complete: bool) -> list[int]:
        tok = self.tokenizer
        if self.input_format == "concat":
            return self._concat(encode_prompt(tok, prompt), encode_response(tok, response, add_eos=False), complete)
        if self.input_format == "pair":
            enc = tok(
                prompt, response, truncation="only_first" if self.max_length else False, max_length=self.max_length
            )
            return list(enc["input_ids"])
        text = self.template.format(prompt=prompt, response=response)
        return list(tok(text, truncation=self.max_length is not None, max_length=self.max_length)["input_ids"])

    def _concat(self, prompt_ids: list[int], response_ids: Sequence[int], complete: bool) -> list[int]:
        """The "concat" layout: prompt ids + response ids + EOS when complete, fitted into ``max_length``."""
        response = list(response_ids) + ([self.tokenizer.eos_token_id] if complete else [])
        p, r = truncate(list(prompt_ids), response, self.max_length)
        return p + r

    def reads_ids_of(self, tokenizer: PreTrainedTokenizerBase) -> bool:
        """Whether response ids of ``tokenizer`` can be scored as they are (:meth:`score_ids`).

        They can in the "concat" format when ``tokenizer`` has this RM's vocabulary: the RM then reads the
        ids that were generated, where decoding them to text and encoding that again could give other
        ids (a byte-level BPE token holding part of a character decodes to U+FFFD).
        """
        return self.input_format == "concat" and same_vocabulary(self.tokenizer, tokenizer)

    def score_ids(
        self, prompt_ids: Sequence[list[int]], response_ids: Sequence[Sequence[int]], complete: Sequence[bool]
    ) -> Tensor:
        """Rewards of (prompt, response) pairs given as ids of this RM's vocabulary, in the "concat" layout.

        The rows are those :meth:`__call__` builds from text (prompt ids + response ids + EOS when
        complete, truncated alike), so where text round-trips through the tokenizer both give the same
        rewards. ``prompt_ids`` come from :func:`~pargs.models.encoding.encode_prompt` with this RM's
        tokenizer; ``response_ids`` hold no special tokens (decoding would have skipped them).
        """
        return self._score_rows([self._concat(p, r, c) for p, r, c in zip(prompt_ids, response_ids, complete)])

    @torch.no_grad()
    def _score_rows(self, rows: Sequence[list[int]]) -> Tensor:
        device = next(self.model.parameters()).device
        out = []
        for start in range(0, len(rows), self.batch_size):
            ids, mask = pad_batch(rows[start : start + self.batch_size], self.tokenizer.pad_token_id, side="right")
            out.append(sequence_rewards(self.model, ids.to(device), mask.to(device)).cpu())
        return torch.cat(out) if out else torch.zeros(0)

    def __call__(
        self, prompts: Sequence[str], responses: Sequence[str], complete: Sequence[bool] | None = None
    ) -> Tensor:
        complete = [True] * len(prompts) if complete is None else complete
        return self._score_rows([self._encode(p, r, c) for p, r, c in zip(prompts, responses, complete)])
