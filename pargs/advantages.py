"""RLHF returns and advantages: KL-penalised per-token rewards and generalized advantage estimation.

Tensors are *response-aligned*: ``[B, R]`` with column j the j-th response token, right padded, and
``mask[b, j]`` True for the tokens each row has (contiguous from column 0, at least one per row).
``values[b, j]`` is the value of the state *before* token j (the prompt plus j response tokens); the
state after the last token is terminal and has value 0.
"""

from __future__ import annotations

import torch
from torch import Tensor

from pargs.errors import ConfigError


def _last_index(mask: Tensor) -> Tensor:
    lengths = mask.sum(1)
    if (lengths < 1).any():
        raise ConfigError("every response needs at least one token")
    return lengths - 1


def kl_penalized_rewards(scores: Tensor, logp: Tensor, ref_logp: Tensor, mask: Tensor, kl_coef: float) -> Tensor:
    """``[B, R]`` per-token rewards: ``-kl_coef * (log pi - log pi_ref)`` at every token, plus the
    sequence reward ``scores[b]`` at each row's last token (the usual RLHF shaping, Ziegler et al. 2019).
    """
    rewards = -kl_coef * (logp - ref_logp) * mask.to(logp.dtype)
    last = _last_index(mask)
    rows = torch.arange(rewards.shape[0], device=rewards.device)
    rewards[rows, last] += scores.to(rewards.dtype)
    return rewards


def gae(rewards: Tensor, values: Tensor, mask: Tensor, gamma: float = 1.0, lam: float = 0.95) -> tuple[Tensor, Tensor]:
    """Generalized advantage estimation (Schulman et al., 2016), per row, over its own tokens.

    ``delta_j = r_j + gamma * V_{j+1} - V_j`` (``V`` past a row's last token is 0) and
    ``A_j = delta_j + gamma * lam * A_{j+1}``. Returns ``(advantages, returns)`` with
    ``returns = advantages + values``; both are 0 outside ``mask``.
    """
    _last_index(mask)
    m = mask.to(values.dtype)
    values = values * m
    advantages = torch.zeros_like(values)
    next_value = torch.zeros_like(values[:, 0])
    next_adv = torch.zeros_like(values[:, 0])
    for j in range(values.shape[1] - 1, -1, -1):
        delta = rewards[:, j] + gamma * next_value - values[:, j]
        advantages[:, j] = (delta + gamma * lam * next_adv) * m[:, j]
        next_value, next_adv = values[:, j], advantages[:, j]
    return advantages, (advantages + values) * m


def whiten(x: Tensor, mask: Tensor, eps: float = 1e-8) -> Tensor:
    """``x`` shifted and scaled to mean 0 and standard deviation 1 over the entries in ``mask`` (0 elsewhere)."""
    m = mask.to(x.dtype)
    n = m.sum().clamp(min=1)
    mean = (x * m).sum() / n
    var = (((x - mean) ** 2) * m).sum() / n
    return (x - mean) * torch.rsqrt(var + eps) * m
