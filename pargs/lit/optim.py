"""AdamW with linear warm-up and cosine decay, the schedule every training module here uses."""

from __future__ import annotations

import math

import torch
from torch import nn


def decay_groups(model: nn.Module, weight_decay: float, lr: float | None = None) -> list[dict]:
    """AdamW parameter groups of ``model``'s trainable weights: no decay on biases and norms.

    ``lr`` (when given) sets the groups' own learning rate, so several models can share one optimizer.
    """
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim < 2 or "norm" in name.lower() else decay).append(p)
    extra = {} if lr is None else {"lr": lr}
    groups = [
        {"params": decay, "weight_decay": weight_decay, **extra},
        {"params": no_decay, "weight_decay": 0.0, **extra},
    ]
    return [g for g in groups if g["params"]]


def warmup_cosine(
    optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int, min_lr_ratio: float = 0.1
) -> torch.optim.lr_scheduler.LambdaLR:
    """Each group's learning rate rises linearly over ``warmup_steps``, then follows a cosine down to
    ``min_lr_ratio`` times its peak at ``total_steps``."""
    total_steps = max(int(total_steps), 1)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def adamw_warmup_cosine(
    model: nn.Module, lr: float, weight_decay: float, warmup_steps: int, total_steps: int, min_lr_ratio: float = 0.1
) -> dict:
    """A ``configure_optimizers`` result: AdamW over :func:`decay_groups` and a per-step :func:`warmup_cosine`."""
    optimizer = torch.optim.AdamW(decay_groups(model, weight_decay), lr=lr)
    scheduler = warmup_cosine(optimizer, warmup_steps, total_steps, min_lr_ratio)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
