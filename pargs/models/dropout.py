"""Switch dropout off inside a model, for RL and preference objectives that compare log-probabilities.

DPO and PPO compare log-probabilities of the same tokens under two models (or one model at two
times); dropout noise would make a policy differ from itself, so it is turned off (TRL does the same).
"""

from __future__ import annotations

from torch import nn


def disable_dropout(model: nn.Module) -> nn.Module:
    """Set ``p = 0`` on every dropout layer of ``model`` and zero the float ``attention_dropout``
    attributes that Llama-style attention layers read instead of a layer (in place); returns the model."""
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
        if isinstance(getattr(module, "attention_dropout", None), float):
            module.attention_dropout = 0.0
    return model
