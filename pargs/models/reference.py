"""The frozen reference model of DPO and PPO: the KL anchor whose log-probabilities never change.

It is either another checkpoint (``reference: {path: ...}``) or a copy of the policy before its first
update; either way it runs in eval mode, takes no gradients and, like the policy, has no dropout, so a
response's reference log-probability is one fixed number.
"""

from __future__ import annotations

import copy

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from pargs.models.dropout import disable_dropout
from pargs.models.loading import ModelSpec, load_causal_lm


def frozen_reference(
    spec: ModelSpec | None,
    tokenizer: PreTrainedTokenizerBase,
    policy: PreTrainedModel | None = None,
    no_dropout: bool = True,
) -> PreTrainedModel:
    """The causal LM ``spec`` names, or (``spec`` None) a copy of ``policy``; eval mode, frozen.

    ``no_dropout`` also switches its dropout off (:func:`pargs.models.dropout.disable_dropout`).
    """
    model = load_causal_lm(spec, tokenizer) if spec is not None else copy.deepcopy(policy)
    if no_dropout:
        disable_dropout(model)
    return model.eval().requires_grad_(False)
