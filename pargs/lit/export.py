"""Save a trained model as a Hugging Face directory (safetensors) at the end of ``fit``."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L

log = logging.getLogger(__name__)


def export_pretrained(module: L.LightningModule, export_dir: str | None) -> None:
    """``save_pretrained`` the module's ``model`` and ``tokenizer`` into ``export_dir`` (rank 0 only)."""
    if not export_dir or module.trainer is None or not module.trainer.is_global_zero:
        return
    out = Path(export_dir)
    out.mkdir(parents=True, exist_ok=True)
    module.model.save_pretrained(out, safe_serialization=True)
    module.tokenizer.save_pretrained(out)
    log.info("exported %s to %s", type(module.model).__name__, out)
