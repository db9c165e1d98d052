"""LoRA adapters (``peft``) on a causal LM or a reward model, set up together with gradient
checkpointing, and export of the adapted model as one plain checkpoint.

With adapters the frozen reference model needs no second copy: it is the base model with the
adapters switched off (``peft_model.disable_adapter()``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from transformers import PreTrainedModel

from pargs.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class LoraSpec:
    """LoRA settings (the paper's DPO baseline uses r = 16, alpha = 16)."""

    r: int = 16  #: rank of the low-rank update
    alpha: int = 16  #: scaling numerator: the update is ``(alpha / r) * B A``
    dropout: float = 0.0  #: dropout on the adapter input
    #: module names to adapt (e.g. ``[q_proj, v_proj]``); None uses peft's default for the model type
    target_modules: list[str] | None = None

    def __post_init__(self) -> None:
        if self.r < 1 or self.alpha <= 0:
            raise ConfigError(f"LoRA needs r >= 1 and alpha > 0, got r={self.r}, alpha={self.alpha}")


def add_lora(model: PreTrainedModel, spec: LoraSpec, task_type: str = "CAUSAL_LM"):
    """Wrap ``model`` with trainable LoRA adapters; every other weight is frozen.

    ``task_type="SEQ_CLS"`` (reward models) also keeps the freshly initialised head (``score`` /
    ``classifier``) fully trainable.
    """
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=spec.r,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        target_modules=spec.target_modules,
        task_type=task_type,
    )
    try:
        return get_peft_model(model, config)
    except ValueError as err:
        if spec.target_modules is None:
            raise ConfigError(
                f"peft has no default LoRA target modules for {type(model).__name__} ({err}); set "
                "`lora.target_modules` to the names of its attention / MLP linear layers"
            ) from err
        raise


def prepare_for_training(
    model: PreTrainedModel, gradient_checkpointing: bool, lora: LoraSpec | None = None, task_type: str = "CAUSAL_LM"
):
    """``model`` with LoRA adapters (when ``lora`` is set) and gradient checkpointing (when asked).

    The two interact: with adapters every base weight is frozen, so the embeddings' output is made to require
    gradients first, or the checkpointed blocks would pass none back to the adapters.
    """
    if lora is not None:
        if gradient_checkpointing:
            model.enable_input_require_grads()
        model = add_lora(model, lora, task_type)
    if gradient_checkpointing:
        model.activation_checkpointing_enable()
    return model


def save_merged(peft_model, out_dir: str | Path) -> None:
    """``save_pretrained`` the base model with the adapters merged in: a plain Hugging Face checkpoint.

    The merge is undone afterwards, so the module keeps training / serving as a reference unchanged.
    """
    peft_model.merge_adapter()
    try:
        base = peft_model.get_base_model()
        state = {  # adapted layers keep their merged base weight; a fully trained head its trained copy
            k.replace(".base_layer.", ".").replace(".modules_to_save.default.", "."): v
            for k, v in base.state_dict().items()
            if ".lora_" not in k and ".original_module." not in k
        }
        base.save_pretrained(out_dir, state_dict=state, safe_serialization=True)
    finally:
        peft_model.unmerge_adapter()
    log.info("saved %s with merged LoRA adapters to %s", type(base).__name__, out_dir)
