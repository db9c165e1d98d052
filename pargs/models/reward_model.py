"""Reward models as Hugging Face sequence classifiers with one output, read at every position.

A reward model is any ``AutoModelForSequenceClassification`` with ``num_labels == 1``, so a trained
one saves with ``save_pretrained`` and loads anywhere (ARGS-style code included). Two families:

- **causal** (GPT-2, Llama, Qwen ...): the backbone is causal and the head (``score``) is applied
  per position, so the hidden state at token t gives r(x, y[:t]) for *every* prefix in one forward
  pass. :func:`token_rewards` exposes this; it also takes a KV cache for incremental scoring.
- **encoder** (BERT, DeBERTa ...): bidirectional, one reward per forward pass from the model's
  own pooling; prefixes must be materialised as separate rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from transformers import MODEL_FOR_CAUSAL_LM_MAPPING, PreTrainedModel

from pargs.errors import ConfigError


def unwrap(model: nn.Module) -> PreTrainedModel:
    """The transformers model inside a ``peft`` wrapper (LoRA), or the model itself."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def is_causal_reward_model(model: PreTrainedModel) -> bool:
    """True when the model's backbone is a decoder whose per-position outputs are prefix rewards."""
    config = unwrap(model).config
    if getattr(config, "is_encoder_decoder", False):
        return False
    return type(config) in MODEL_FOR_CAUSAL_LM_MAPPING and isinstance(_head(model, required=False), nn.Module)


def require_causal_reward_model(model: PreTrainedModel, purpose: str) -> PreTrainedModel:
    """Return ``model``, or fail with a clear message when it cannot give every prefix's output in one pass."""
    if not is_causal_reward_model(model):
        raise ConfigError(
            f"{type(model).__name__} is not a causal reward model; {purpose} reads every prefix's output from "
            "one forward pass and needs a decoder backbone (a causal *ForSequenceClassification model)"
        )
    return model


def _head(model: PreTrainedModel, required: bool = True) -> nn.Module | None:
    head = getattr(unwrap(model), "score", None)
    if head is None and required:
        raise ConfigError(
            f"{type(model).__name__} has no per-position `score` head; per-token rewards need a causal "
            "*ForSequenceClassification model (GPT-2, Llama, Qwen, ...)"
        )
    return head


def backbone(model: PreTrainedModel) -> nn.Module:
    """The transformer under the head (``model.transformer`` / ``model.model`` ...)."""
    return unwrap(model).base_model


def token_rewards(
    model: PreTrainedModel,
    input_ids: Tensor,
    attention_mask: Tensor | None = None,
    position_ids: Tensor | None = None,
    cache=None,
    use_cache: bool = False,
) -> tuple[Tensor, object]:
    """Per-position rewards ``[B, T]`` of a causal reward model, and the updated cache.

    Half-precision rewards are returned in float32 (the loss needs the precision); float32 and
    float64 models keep their dtype.

    ``attention_mask`` may be 2D (padding) or 4D (custom visibility, see the cached scorer).
    """
    out = backbone(model)(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids,
        cache=cache,
        use_cache=use_cache,
    )
    hidden = out.last_hidden_state
    rewards = _head(model)(hidden).squeeze(-1)
    if rewards.dtype in (torch.float16, torch.bfloat16):
        rewards = rewards.float()
    return rewards, (out.cache if use_cache else None)


def sequence_rewards(model: PreTrainedModel, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
    """Reward ``[B]`` of each whole sequence (right or left padded), read at its last real token.

    For causal models the head is applied at the last position whose mask is 1; encoder models use
    their own pooling. Padding tokens never influence the result.
    """
    if is_causal_reward_model(model):
        positions = position_ids_from_mask(attention_mask)
        rewards, _ = token_rewards(model, input_ids, attention_mask, positions)
        last = last_token_index(attention_mask)
        return rewards.gather(1, last.unsqueeze(1)).squeeze(1)
    out = model(input_ids=input_ids, attention_mask=attention_mask)
    logits = out.logits[:, 0]
    return logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits


def last_token_index(attention_mask: Tensor) -> Tensor:
    """``[B]`` index of the rightmost position whose mask is 1."""
    t = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    return (t * attention_mask.to(torch.long)).argmax(dim=1)


def position_ids_from_mask(attention_mask: Tensor) -> Tensor:
    """Position ids that skip left padding: 0 at each row's first real token."""
    positions = attention_mask.to(torch.long).cumsum(-1) - 1
    return positions.clamp(min=0)


def prefix_rewards(
    model: PreTrainedModel, input_ids: Tensor, attention_mask: Tensor, cuts: Sequence[Tensor]
) -> list[Tensor]:
    """For each ``[B]`` tensor of positions in ``cuts``, the ``[B]`` rewards of the right-padded rows cut
    after those positions (the prefixes ending there).

    A causal RM reads every cut from one pass over the whole rows; an encoder RM, which sees both
    directions, gets one pass per cut with everything after the position masked out, so later tokens
    cannot leak in.
    """
    if is_causal_reward_model(model):
        rewards, _ = token_rewards(model, input_ids, attention_mask)
        return [rewards.gather(1, p.unsqueeze(1)).squeeze(1) for p in cuts]
    t = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
    return [
        sequence_rewards(model, input_ids, (attention_mask.bool() & (t <= p.unsqueeze(1))).to(attention_mask.dtype))
        for p in cuts
    ]


def rewards_at(model: PreTrainedModel, input_ids: Tensor, attention_mask: Tensor, positions: Tensor) -> Tensor:
    """``[B]`` reward of each right-padded row cut after ``positions[b]`` (see :func:`prefix_rewards`)."""
    return prefix_rewards(model, input_ids, attention_mask, [positions])[0]
