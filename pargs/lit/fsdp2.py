"""FSDP2 sharding of a Hugging Face model, applied in ``configure_model`` under ``ModelParallelStrategy``.

Every transformer block (the classes the model lists in ``_no_split_modules``, e.g. ``GPT2Block``,
``LlamaDecoderLayer``, ``DebertaV2Layer``) becomes its own ``fully_shard`` unit, then the backbone
(embeddings, final norm), the head (unless tied to the embeddings), and the root. This
runs on GPUs with NCCL and, unlike Lightning's ``strategy="fsdp"``, also on CPU with gloo, so the
sharded path is tested without a GPU. A full (unsharded) state dict for export is gathered with
:func:`full_state_dict`, a collective every rank must call.
"""

from __future__ import annotations

import torch.distributed as dist
from torch import nn

from pargs.errors import ConfigError
from pargs.models.reward_model import unwrap


def shard_with_fsdp2(model: nn.Module, mesh) -> nn.Module:
    """Apply ``fully_shard`` to each transformer block of ``model`` and to ``model`` itself (in place)."""
    from torch.distributed.fsdp import fully_shard

    blocks = set(getattr(unwrap(model), "_no_split_modules", None) or [])
    if not blocks:
        raise ConfigError(
            f"{type(model).__name__} names no transformer block class (_no_split_modules); FSDP2 "
            "needs one to shard per block"
        )
    found = 0
    for module in model.modules():
        if type(module).__name__ in blocks:
            fully_shard(module, mesh=mesh)
            found += 1
    if not found:
        raise ConfigError(f"none of {sorted(blocks)} occurs in {type(model).__name__}: nothing to shard")
    # the backbone and the head as units of their own: pargs calls them directly (per-position rewards), so
    # the root's forward, which would gather the root unit's parameters, is not always the one that runs
    # (a head tied to the input embeddings, as GPT-2's LM head is, joins the backbone's unit)
    inner = unwrap(model)
    in_backbone = {id(p) for p in inner.base_model.parameters()}
    backbone, others = [inner.base_model], []
    for child in inner.children():
        params = list(child.parameters())
        if child is inner.base_model or not params:
            continue
        (backbone if any(id(p) in in_backbone for p in params) else others).append(child)
    fully_shard(backbone if len(backbone) > 1 else inner.base_model, mesh=mesh)
    for child in others:
        fully_shard(child, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model


def is_sharded(model: nn.Module) -> bool:
    """Whether the model's parameters are sharded across processes (FSDP1 or FSDP2)."""
    if not (dist.is_available() and dist.is_initialized()):
        return False
    return any(type(p).__name__ == "DTensor" for p in model.parameters()) or any(
        type(m).__name__ == "FullyShardedDataParallel" for m in model.modules()
    )


_WRAPPER_PARTS = ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module.", "_orig_mod.")


def clean_name(name: str) -> str:
    """A parameter name without the segments FSDP1, activation checkpointing and ``torch.compile`` insert."""
    for part in _WRAPPER_PARTS:
        name = name.replace(part, "")
    return name


def tied_aliases(model: nn.Module) -> set[str]:
    """Clean names under which a parameter already seen appears again (GPT-2's ``lm_head.weight``)."""
    every = {clean_name(n) for n, _ in model.named_parameters(remove_duplicate=False)}
    return every - {clean_name(n) for n, _ in model.named_parameters()}


def full_state_dict(model: nn.Module) -> dict:
    """The unsharded state dict on CPU (collective: call on every rank; rank 0 gets the tensors)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
