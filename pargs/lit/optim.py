"""AdamW with linear warm-up and cosine decay, the schedule every training module here uses."""

from __future__ import annotations

import math

import torch
from torch import nn


def adamw_warmup_cosine(
    model: nn.Module, lr: float, weight_decay: float, warmup_steps: int, total_steps: int, min_lr_ratio: float = 0.1
) -> dict:
    """A ``configure_optimizers`` result: AdamW (no decay on biases / norms) and a per-step schedule.

    The learning rate rises linearly over ``warmup_steps`` and then follows a cosine down to
    ``min_lr_ratio * lr`` at ``total_steps``.
    """
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim < 2 or "norm" in name.lower() else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW([g for g in groups if g["params"]], lr=lr)
    total_steps = max(int(total_steps), 1)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
