"""Supervised fine-tuning of a causal LM (the reference model pi_ref)."""

from __future__ import annotations

import math

import torch

from pargs.lit.pretrained_module import PretrainedModule
from pargs.models.loading import ModelSpec, load_causal_lm


class CausalLMModule(PretrainedModule):
    """Next-token cross-entropy on the response tokens (batches from ``SFTDataModule``).

    Args:
        model: the causal LM to fine-tune (or a config to train from scratch).
        lr: peak learning rate.
        weight_decay: AdamW weight decay.
        warmup_steps: linear warm-up steps before the cosine decay.
        export_dir: save the trained model here as a Hugging Face directory at the end of ``fit``.
        gradient_checkpointing: recompute activations in the backward pass to save memory.
    """

    def __init__(
        self,
        model: ModelSpec,
        lr: float = 5e-4,
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        export_dir: str | None = None,
        gradient_checkpointing: bool = False,
    ) -> None:
        super().__init__(model)
        self.save_plain_hyperparameters()

    def build_model(self):
        return load_causal_lm(self.spec, self.tokenizer)

    def _loss(self, batch: dict) -> torch.Tensor:
        return self.model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]
        ).loss

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss = self._loss(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["input_ids"].shape[0])
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        loss = self._loss(batch)
        n = batch["input_ids"].shape[0]
        self.log("val/loss", loss, prog_bar=True, batch_size=n, sync_dist=True)
        self.log("val/ppl", math.exp(min(loss.item(), 50.0)), batch_size=n, sync_dist=True)
