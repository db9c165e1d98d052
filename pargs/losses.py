"""Pure loss functions: Bradley-Terry on full sequences and on every prefix, and DPO.

All reward-model paths (dense causal, materialised prefixes, full sequence) end in
:func:`bradley_terry_loss`, so they share one definition of the objective.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from pargs.errors import ConfigError
from pargs.prefixes import PadRule, final_positions, pair_prefix_positions

Weighting = Literal["term", "pair"]


def bradley_terry_loss(
    r_chosen: Tensor,
    r_rejected: Tensor,
    mask: Tensor | None = None,
    margin: Tensor | float | None = None,
    weighting: Weighting = "term",
    center_coef: float = 0.0,
) -> Tensor:
    """Mean of ``-log sigmoid(r_chosen - r_rejected - margin)`` over the terms in ``mask``.

    Args:
        r_chosen, r_rejected: rewards, ``[B]`` (one term per pair) or ``[B, L]`` (L prefix terms).
        mask: which terms exist (same shape); all when None.
        margin: optional margin per pair (``[B]``) or a constant, as in TRL's reward trainer.
        weighting: ``"term"`` gives every (pair, prefix) term the same weight, like a dataset holding
            one row per prefix pair (the paper's construction); ``"pair"`` averages each pair's terms
            first, so long and short pairs weigh the same.
        center_coef: adds ``center_coef * mean((r_chosen + r_rejected)^2)`` to keep rewards centred.
    """
    diff = r_chosen - r_rejected
    if margin is not None:
        margin = torch.as_tensor(margin, dtype=diff.dtype, device=diff.device)
        diff = diff - (margin.unsqueeze(-1) if margin.dim() == 1 and diff.dim() == 2 else margin)
    terms = -F.logsigmoid(diff)
    if mask is None:
        mask = torch.ones_like(terms, dtype=torch.bool)
    m = mask.to(terms.dtype)
    if weighting == "term" or terms.dim() == 1:
        loss = (terms * m).sum() / m.sum().clamp(min=1)
    elif weighting == "pair":
        loss = ((terms * m).sum(-1) / m.sum(-1).clamp(min=1)).mean()
    else:
        raise ConfigError(f"weighting must be 'term' or 'pair', got {weighting!r}")
    if center_coef:
        loss = loss + center_coef * (((r_chosen + r_rejected) ** 2 * m).sum() / m.sum().clamp(min=1))
    return loss


def gather_rewards(token_rewards: Tensor, positions: Tensor) -> Tensor:
    """Pick ``token_rewards[b, positions[b, ...]]`` for ``[B, T]`` rewards and ``[B]``/``[B, L]`` positions."""
    if positions.dim() == 1:
        return token_rewards.gather(1, positions.unsqueeze(1)).squeeze(1)
    return token_rewards.gather(1, positions)


def partial_bt_loss(
    rewards_w: Tensor,
    rewards_l: Tensor,
    prompt_len_w: Tensor,
    len_w: Tensor,
    prompt_len_l: Tensor,
    len_l: Tensor,
    pad_rule: PadRule = "longest",
    **bt_kwargs,
) -> Tensor:
    """The paper's loss over every prefix length, from per-token rewards of the two sequences.

    ``rewards_w[b, t]`` is r(x, y_w[: t - prompt_len + 1]): the reward a causal RM reads at token t,
    so one forward pass of each response yields every prefix's reward (the dense path).
    """
    pos_w, pos_l, mask = pair_prefix_positions(prompt_len_w, len_w, prompt_len_l, len_l, pad_rule)
    return bradley_terry_loss(gather_rewards(rewards_w, pos_w), gather_rewards(rewards_l, pos_l), mask, **bt_kwargs)


def full_bt_loss(
    rewards_w: Tensor, rewards_l: Tensor, prompt_len_w: Tensor, len_w: Tensor, prompt_len_l: Tensor, len_l: Tensor,
    **bt_kwargs,
) -> Tensor:
    """The ordinary reward-model loss: one term per pair, rewards read at the last response token."""
    r_w = gather_rewards(rewards_w, final_positions(prompt_len_w, len_w))
    r_l = gather_rewards(rewards_l, final_positions(prompt_len_l, len_l))
    bt_kwargs.pop("weighting", None)
    return bradley_terry_loss(r_w, r_l, **bt_kwargs)


def sequence_logprobs(logits: Tensor, labels: Tensor, mask: Tensor) -> Tensor:
    """Sum of ``log p(labels[t] | <t)`` over positions where ``mask`` is set.

    ``logits[:, t]`` predicts ``labels[:, t]`` (callers shift). Returns ``[B]``.
    """
    logp = torch.log_softmax(logits.float(), dim=-1).gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    return (logp * mask.to(logp.dtype)).sum(-1)


def dpo_loss(
    policy_chosen: Tensor, policy_rejected: Tensor, ref_chosen: Tensor, ref_rejected: Tensor, beta: float = 0.1
) -> tuple[Tensor, Tensor, Tensor]:
    """Sigmoid DPO loss from summed response log-probabilities (Rafailov et al., 2023).

    Returns ``(loss, chosen_rewards, rejected_rewards)`` where the implicit rewards are
    ``beta * (log pi - log pi_ref)`` of each response (detached).
    """
    logits = beta * ((policy_chosen - ref_chosen) - (policy_rejected - ref_rejected))
    loss = -F.logsigmoid(logits).mean()
    return loss, (beta * (policy_chosen - ref_chosen)).detach(), (beta * (policy_rejected - ref_rejected)).detach()
