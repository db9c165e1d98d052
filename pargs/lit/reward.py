"""Reward-model training: the paper's partial-sequence Bradley-Terry loss, or the ordinary one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

from pargs.errors import ConfigError
from pargs.lit.pretrained_module import PretrainedModule
from pargs.losses import bradley_terry_loss, full_bt_loss, gather_rewards, partial_bt_loss
from pargs.models.loading import ModelSpec, load_reward_model
from pargs.models.reward_model import require_causal_reward_model, token_rewards
from pargs.prefixes import check_pad_rule, final_positions, prefix_fraction_lengths


class RewardModule(PretrainedModule):
    """Train a scalar reward model on preference pairs (batches from ``PreferenceDataModule``).

    Args:
        model: the reward model (a causal LM checkpoint gets a fresh one-output head).
        objective: ``"partial"``: one Bradley-Terry term per prefix length (the paper); ``"full"``:
            one term per pair on the whole responses (the ordinary RM loss).
        pad_rule: how prefixes past the end of the shorter response are compared (see
            :mod:`pargs.prefixes`; the paper's rule is ``"longest"``).
        weighting: ``"term"``: every (pair, prefix) term weighs the same; ``"pair"``: every pair does.
        margin: constant margin subtracted from r_chosen - r_rejected.
        center_coef: weight of the reward-centring penalty ``mean((r_w + r_l)^2)``.
        lr: peak learning rate.
        weight_decay: AdamW weight decay.
        warmup_steps: linear warm-up steps before the cosine decay.
        prefix_fractions: response fractions at which validation accuracy is also reported.
        export_dir: save the trained model here as a Hugging Face directory at the end of ``fit``.
        gradient_checkpointing: recompute activations in the backward pass to save memory.
    """

    def __init__(
        self,
        model: ModelSpec,
        objective: Literal["partial", "full"] = "partial",
        pad_rule: Literal["longest", "shortest"] = "longest",
        weighting: Literal["term", "pair"] = "term",
        margin: float = 0.0,
        center_coef: float = 0.0,
        lr: float = 1e-4,
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        prefix_fractions: Sequence[float] = (0.25, 0.5, 0.75, 1.0),
        export_dir: str | None = None,
        gradient_checkpointing: bool = False,
    ) -> None:
        super().__init__(model)
        if objective not in ("partial", "full"):
            raise ConfigError(f"objective must be 'partial' or 'full', got {objective!r}")
        check_pad_rule(pad_rule)
        self.save_plain_hyperparameters()

    def build_model(self):
        return require_causal_reward_model(load_reward_model(self.spec, self.tokenizer), "RewardModule")

    def _rewards(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, dict]:
        rewards, _ = token_rewards(self.model, batch["input_ids"], batch["attention_mask"])
        b = rewards.shape[0] // 2
        pl, rl = batch["prompt_len"], batch["response_len"]
        lens = {"prompt_len_w": pl[:b], "len_w": rl[:b], "prompt_len_l": pl[b:], "len_l": rl[b:]}
        return rewards[:b], rewards[b:], lens

    def _loss(self, r_w: torch.Tensor, r_l: torch.Tensor, lens: dict) -> torch.Tensor:
        hp = self.hparams
        kwargs = {"margin": hp.margin or None, "center_coef": hp.center_coef}
        if hp.objective == "partial":
            return partial_bt_loss(r_w, r_l, **lens, pad_rule=hp.pad_rule, weighting=hp.weighting, **kwargs)
        return full_bt_loss(r_w, r_l, **lens, **kwargs)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        r_w, r_l, lens = self._rewards(batch)
        loss = self._loss(r_w, r_l, lens)
        self.log("train/loss", loss, prog_bar=True, batch_size=r_w.shape[0])
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        r_w, r_l, lens = self._rewards(batch)
        n = r_w.shape[0]
        self.log("val/loss", self._loss(r_w, r_l, lens), prog_bar=True, batch_size=n, sync_dist=True)
        full_w = gather_rewards(r_w, final_positions(lens["prompt_len_w"], lens["len_w"]))
        full_l = gather_rewards(r_l, final_positions(lens["prompt_len_l"], lens["len_l"]))
        self.log("val/acc", pairwise_accuracy(full_w, full_l), prog_bar=True, batch_size=n, sync_dist=True)
        for f in self.hparams.prefix_fractions:
            i = prefix_fraction_lengths(lens["len_w"], lens["len_l"], f, self.hparams.pad_rule)
            pw = gather_rewards(r_w, lens["prompt_len_w"] + torch.minimum(i, lens["len_w"]) - 1)
            pl = gather_rewards(r_l, lens["prompt_len_l"] + torch.minimum(i, lens["len_l"]) - 1)
            self.log(f"val/acc@{round(f * 100)}%", pairwise_accuracy(pw, pl), batch_size=n, sync_dist=True)
        # the loss on full sequences only, comparable across objectives
        self.log("val/full_loss", bradley_terry_loss(full_w, full_l), batch_size=n, sync_dist=True)


def pairwise_accuracy(r_chosen: torch.Tensor, r_rejected: torch.Tensor) -> torch.Tensor:
    """Share of pairs whose chosen reward is higher (ties count one half)."""
    return ((r_chosen > r_rejected).float() + 0.5 * (r_chosen == r_rejected).float()).mean()
