"""Pure loss functions: Bradley-Terry on full sequences and on every prefix, DPO, the CD-FUDGE prefix
value regression and PPO's clipped policy and value objectives.

All reward-model paths (dense causal, materialised prefixes, full sequence) end in
:func:`bradley_terry_loss`, so they share one definition of the objective.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from pargs.errors import ConfigError
from pargs.prefixes import PadRule, final_positions, pair_prefix_positions, response_mask

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
        center_coef: adds ``center_coef * mean((r_chosen + r_rejected)^2)`` to keep rewards centred (the
            mean weighted like the loss).

    With ``"pair"`` weighting (or one term per pair) every pair weighs the same, so the mean over a
    batch split across DDP processes equals the mean over the whole batch; with ``"term"`` each
    process averages its own terms and the processes' means are then averaged.
    """
    diff = r_chosen - r_rejected
    if margin is not None:
        margin = torch.as_tensor(margin, dtype=diff.dtype, device=diff.device)
        diff = diff - (margin.unsqueeze(-1) if margin.dim() == 1 and diff.dim() == 2 else margin)
    terms = -F.logsigmoid(diff)
    if mask is None:
        mask = torch.ones_like(terms, dtype=torch.bool)
    m = mask.to(terms.dtype)
    if weighting not in ("term", "pair"):
        raise ConfigError(f"weighting must be 'term' or 'pair', got {weighting!r}")

    def mean(x: Tensor) -> Tensor:
        if weighting == "term" or x.dim() == 1:
            return (x * m).sum() / m.sum().clamp(min=1)
        return ((x * m).sum(-1) / m.sum(-1).clamp(min=1)).mean()

    loss = mean(terms)
    if center_coef:
        loss = loss + center_coef * mean((r_chosen + r_rejected) ** 2)
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
    rewards_w: Tensor,
    rewards_l: Tensor,
    prompt_len_w: Tensor,
    len_w: Tensor,
    prompt_len_l: Tensor,
    len_l: Tensor,
    **bt_kwargs,
) -> Tensor:
    """The ordinary reward-model loss: one term per pair, rewards read at the last response token."""
    r_w = gather_rewards(rewards_w, final_positions(prompt_len_w, len_w))
    r_l = gather_rewards(rewards_l, final_positions(prompt_len_l, len_l))
    bt_kwargs.pop("weighting", None)
    return bradley_terry_loss(r_w, r_l, **bt_kwargs)


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``x`` over the entries where ``mask`` is set (0 when none is)."""
    m = mask.to(x.dtype)
    return (x * m).sum() / m.sum().clamp(min=1)


def token_logprobs(logits: Tensor, labels: Tensor) -> Tensor:
    """``[B, T]`` log p(labels[t] | <t), computed in float32 at least; ``logits[:, t]`` predicts ``labels[:, t]``."""
    logits = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
    return torch.log_softmax(logits, dim=-1).gather(-1, labels.unsqueeze(-1)).squeeze(-1)


def sequence_logprobs(logits: Tensor, labels: Tensor, mask: Tensor) -> Tensor:
    """Sum of ``log p(labels[t] | <t)`` over positions where ``mask`` is set.

    ``logits[:, t]`` predicts ``labels[:, t]`` (callers shift). Returns ``[B]``.
    """
    logp = token_logprobs(logits, labels)
    return (logp * mask.to(logp.dtype)).sum(-1)


def response_logprobs(logits: Tensor, input_ids: Tensor, prompt_len: Tensor, response_len: Tensor) -> Tensor:
    """``[B]`` log pi(response | prompt): the sum over response tokens of right-padded ``prompt + response`` rows.

    ``logits`` are a causal LM's outputs for ``input_ids`` (``[B, T, V]``); the logits at position t
    predict token t + 1, so the response tokens at ``prompt_len .. prompt_len + response_len - 1``
    are read from the logits one position earlier.
    """
    mask = response_mask(prompt_len, response_len, input_ids.shape[1])[:, 1:]
    return sequence_logprobs(logits[:, :-1], input_ids[:, 1:], mask)


def prefix_value_loss(values: Tensor, targets: Tensor, prompt_len: Tensor, response_len: Tensor) -> Tensor:
    """CD-FUDGE's value regression: mean over every (row, prefix) of ``(V(x, y[:i]) - r(x, y))^2``.

    Args:
        values: ``[B, T]`` per-position outputs of a causal value model for right-padded
            ``prompt + response`` rows; position t holds the value of the prefix ending at t.
        targets: ``[B]`` the reward of each complete rollout.
        prompt_len, response_len: ``[B]``; the prefixes are i = 1 .. response_len response tokens.

    Every prefix term weighs the same (like the ``"term"`` weighting of the partial BT loss); the CD
    paper's per-rollout sum over prefixes differs from it by a constant factor per batch.
    """
    mask = response_mask(prompt_len, response_len, values.shape[1])
    return masked_mean((values - targets.to(values.dtype).unsqueeze(1)) ** 2, mask)


def ppo_policy_loss(
    logp: Tensor, old_logp: Tensor, advantages: Tensor, mask: Tensor, clip_range: float = 0.2
) -> tuple[Tensor, Tensor, Tensor]:
    """PPO's clipped surrogate, per token (Schulman et al., 2017), averaged over the tokens in ``mask``.

    ``loss = mean(max(-A * ratio, -A * clip(ratio, 1 - eps, 1 + eps)))`` with ``ratio = exp(logp - old_logp)``.
    Returns ``(loss, clip_fraction, approx_kl)``; the last two are detached diagnostics (the share of
    tokens where the clipped term is taken, and the ``(ratio - 1) - log ratio`` estimate of KL(old || new)).
    """
    log_ratio = logp - old_logp
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1.0 - clip_range, 1.0 + clip_range)
    loss = masked_mean(torch.maximum(unclipped, clipped), mask)
    with torch.no_grad():
        clip_fraction = masked_mean((clipped > unclipped).to(logp.dtype), mask)
        approx_kl = masked_mean((ratio - 1) - log_ratio, mask)
    return loss, clip_fraction, approx_kl


def ppo_value_loss(
    values: Tensor, old_values: Tensor, returns: Tensor, mask: Tensor, clip_range: float | None = 0.2
) -> tuple[Tensor, Tensor]:
    """PPO's clipped value loss ``0.5 * mean(max((V - R)^2, (V_clip - R)^2))`` over the tokens in ``mask``.

    ``V_clip = V_old + clip(V - V_old, -eps, eps)``; ``clip_range=None`` gives the plain squared error.
    Returns ``(loss, clip_fraction)`` (the share of tokens where the clipped term is larger, detached).
    """
    err = (values - returns) ** 2
    if clip_range is None:
        return 0.5 * masked_mean(err, mask), torch.zeros((), dtype=values.dtype, device=values.device)
    clipped = old_values + (values - old_values).clamp(-clip_range, clip_range)
    err_clipped = (clipped - returns) ** 2
    loss = 0.5 * masked_mean(torch.maximum(err, err_clipped), mask)
    with torch.no_grad():
        clip_fraction = masked_mean((err_clipped > err).to(values.dtype), mask)
    return loss, clip_fraction


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
