"""Save a trained model as a Hugging Face directory (safetensors) at the end of ``fit``."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L

from pargs.lit.fsdp2 import full_state_dict, is_sharded, tied_aliases
from pargs.models.lora import save_merged

log = logging.getLogger(__name__)


def export_pretrained(module: L.LightningModule, export_dir: str | None) -> None:
    """``save_pretrained`` the module's ``model`` and ``tokenizer`` into ``export_dir`` (written by rank 0).

    A sharded model (FSDP) is gathered first, on every rank; LoRA adapters are merged in.
    """
    if not export_dir or module.trainer is None:
        return
    state = full_state_dict(module.model) if is_sharded(module.model) else None  # collective
    if state is not None:  # a tied weight (GPT-2's LM head) once, under its first name, as save_pretrained does
        aliases = tied_aliases(module.model)
        state = {k: v for k, v in state.items() if k not in aliases}
    if not module.trainer.is_global_zero:
        return
    out = Path(export_dir)
    out.mkdir(parents=True, exist_ok=True)
    if hasattr(module.model, "merge_adapter"):  # peft (LoRA): one plain checkpoint with the adapters merged in
        save_merged(module.model, out)
    else:
        module.model.save_pretrained(out, state_dict=state, safe_serialization=True)
    module.tokenizer.save_pretrained(out)
    log.info("exported %s to %s", type(module.model).__name__, out)
