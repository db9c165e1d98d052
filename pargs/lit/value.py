"""CD-FUDGE's prefix value model (Mudgal et al., 2024; FUDGE: Yang & Klein, 2021), the paper's
CD-FUDGE baseline.

The reference LM's own rollouts on the training prompts are scored by a reward model
(``RolloutDataModule``); every prefix y[:i] of a rollout then regresses to the reward of the whole
rollout with a squared loss (:func:`pargs.losses.prefix_value_loss`), so V(x, y[:i]) estimates the
expected final reward of continuing y[:i] with the reference LM. The CD paper's CD-FUDGE uses
exactly this regression (not a classifier of the final reward).

The value model is a causal ``*ForSequenceClassification`` with one output read at every position,
like a partial-sequence reward model, so one forward pass gives every prefix's value, and at decode
time it plugs into the same scorer (``RewardSpec(model=...)`` -> ``CachedCausalScorer``): the
``cd-fudge`` method preset guides decoding with a scorer named ``value``.
"""

from __future__ import annotations

import torch

from pargs.lit.pretrained_module import PretrainedModule
from pargs.losses import gather_rewards, prefix_value_loss
from pargs.models.loading import ModelSpec, load_reward_model
from pargs.models.reward_model import require_causal_reward_model, token_rewards
from pargs.prefixes import final_positions


class ValueModule(PretrainedModule):
    """Regress every prefix of scored rollouts to the rollout's reward (batches from ``RolloutDataModule``).

    Args:
        model: the value model (a causal LM checkpoint, e.g. the reference, gets a fresh one-output head).
        lr: peak learning rate.
        weight_decay: AdamW weight decay.
        warmup_steps: linear warm-up steps before the cosine decay.
        export_dir: save the trained model here as a Hugging Face directory at the end of ``fit``.
        gradient_checkpointing: recompute activations in the backward pass to save memory.
    """

    def __init__(
        self,
        model: ModelSpec,
        lr: float = 1e-4,
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        export_dir: str | None = None,
        gradient_checkpointing: bool = False,
    ) -> None:
        super().__init__(model)
        self.save_plain_hyperparameters()

    def build_model(self):
        return require_causal_reward_model(load_reward_model(self.spec, self.tokenizer), "a CD-FUDGE value model")

    def value_loss(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """``(loss over every prefix, per-position values [B, T])`` of a rollout batch."""
        values, _ = token_rewards(self.model, batch["input_ids"], batch["attention_mask"])
        return prefix_value_loss(values, batch["reward"], batch["prompt_len"], batch["response_len"]), values

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss, _ = self.value_loss(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["reward"].shape[0])
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        loss, values = self.value_loss(batch)
        n = batch["reward"].shape[0]
        final = gather_rewards(values, final_positions(batch["prompt_len"], batch["response_len"]))
        self.log("val/loss", loss, prog_bar=True, batch_size=n, sync_dist=True)
        # the complete response's value against its reward: how well the model matches the RM itself
        self.log("val/final_mse", ((final - batch["reward"].to(final.dtype)) ** 2).mean(), batch_size=n, sync_dist=True)
