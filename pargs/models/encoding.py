"""How prompts and responses become token ids, in one place for training, decoding and scoring.

A sequence is ``prompt ids + response ids + [EOS]``: the prompt is encoded with the tokenizer's
special tokens (a BOS where the model uses one), the response without them, and the EOS marks a
finished response. Training (SFT, reward models), the decoder and the reward scorers all use these
functions, so a reward model reads exactly the ids it was trained on.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from transformers import PreTrainedTokenizerBase

from pargs.errors import ConfigError
from pargs.models.partial_characters import finished_text


def encode_prompt(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    """Prompt ids, with the tokenizer's leading special tokens (if any)."""
    return list(tokenizer(text, add_special_tokens=True)["input_ids"])


def encode_response(tokenizer: PreTrainedTokenizerBase, text: str, add_eos: bool = True) -> list[int]:
    """Response ids without special tokens, followed by EOS when ``add_eos``."""
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    if add_eos:
        ids.append(tokenizer.eos_token_id)
    return ids


def decode_response(tokenizer: PreTrainedTokenizerBase, ids: Sequence[int]) -> str:
    """Text of generated response ids (special tokens such as EOS and padding dropped).

    A response that stops inside a multibyte character (the token budget ran out after the first bytes
    of an emoji, say) ends at the last finished character (:func:`~pargs.models.partial_characters.finished_text`):
    the text a reward reads is then a prefix of the text any continuation would give, never a U+FFFD
    that the next token would have replaced.
    """
    return finished_text(tokenizer, ids)


def same_vocabulary(a: PreTrainedTokenizerBase, b: PreTrainedTokenizerBase) -> bool:
    """Whether two tokenizers map every token to the same id (then token ids can be shared)."""
    return a is b or (len(a) == len(b) and a.get_vocab() == b.get_vocab())


def truncate(
    prompt: list[int], response: list[int], max_length: int | None, side: str = "left"
) -> tuple[list[int], list[int]]:
    """Fit ``prompt + response`` into ``max_length`` tokens.

    ``side="left"`` drops the oldest prompt tokens first (keeps the response whole where possible);
    ``side="right"`` cuts the end of the response. The response always keeps at least one token.
    """
    if max_length is None or len(prompt) + len(response) <= max_length:
        return prompt, response
    if side == "left":
        keep_prompt = max(0, max_length - len(response))
        prompt = prompt[len(prompt) - keep_prompt :] if keep_prompt else []
        return prompt, response[: max_length - len(prompt)]
    if side == "right":
        prompt = prompt[: max_length - 1]
        return prompt, response[: max_length - len(prompt)]
    raise ConfigError(f"truncation side must be 'left' or 'right', got {side!r}")


def pad_batch(seqs: Sequence[Sequence[int]], pad_id: int, side: str = "right") -> tuple[Tensor, Tensor]:
    """Stack lists of ids into ``[B, T]`` ids and a 0/1 attention mask, padding on ``side``."""
    width = max((len(s) for s in seqs), default=0)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        if not s:
            continue
        if side == "right":
            ids[i, : len(s)] = torch.as_tensor(s)
            mask[i, : len(s)] = 1
        elif side == "left":
            ids[i, width - len(s) :] = torch.as_tensor(s)
            mask[i, width - len(s) :] = 1
        else:
            raise ConfigError(f"side must be 'left' or 'right', got {side!r}")
    return ids, mask


def encode_pair(
    tokenizer: PreTrainedTokenizerBase,
    prompt: str,
    chosen: str,
    rejected: str,
    max_length: int | None = None,
    side: str = "left",
) -> tuple[list[int], list[int], list[int], bool]:
    """Ids of a preference pair sharing one prompt: ``(prompt, chosen, rejected, truncated)``.

    Both sequences are fitted into ``max_length`` with the same prompt (see :func:`truncate`; the
    longer response sets the prompt's budget).
    """
    p = encode_prompt(tokenizer, prompt)
    c, r = encode_response(tokenizer, chosen), encode_response(tokenizer, rejected)
    longer = c if len(c) >= len(r) else r
    p2, kept = truncate(p, longer, max_length, side)
    if len(p2) == len(p) and len(kept) == len(longer):
        return p, c, r, False
    budget = max_length - len(p2)
    return p2, c[:budget], r[:budget], True
