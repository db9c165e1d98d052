"""Reward-model training: the paper's partial-sequence Bradley-Terry loss, or the ordinary one.

Two ways to the partial loss, one loss function (:func:`pargs.losses.bradley_terry_loss`):

- **dense** (causal RMs): one forward pass per response gives every prefix's reward; all the
  pair's terms come from it (:func:`pargs.losses.partial_bt_loss`).
- **materialised** (any RM, required for encoders): the datamodule serves prefix pairs as rows
  (``data.prefix_rows``: a sampling ratio, or "all"); each row is one term, scored as a sequence.
  With ``prefix_rows: all`` and ``weighting: term`` it equals the dense loss exactly (tested).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

from pargs.errors import ConfigError
from pargs.lit.pretrained_module import PretrainedModule
from pargs.losses import bradley_terry_loss, partial_bt_loss
from pargs.metrics.prefix_agreement import agreement, pair_prefix_scores
from pargs.models.loading import ModelSpec, load_reward_model
from pargs.models.lora import LoraSpec
from pargs.models.reward_model import is_causal_reward_model, rewards_at, token_rewards
from pargs.prefixes import check_pad_rule, final_positions, prefix_fraction_lengths


class RewardModule(PretrainedModule):
    """Train a scalar reward model on preference pairs (batches from ``PreferenceDataModule``).

    Args:
        model: the reward model: a causal LM checkpoint (GPT-2, Llama ...) or an encoder (BERT,
            DeBERTa ...); a checkpoint without a one-output head gets a fresh one.
        objective: ``"partial"``: one Bradley-Terry term per prefix length (the paper); ``"full"``:
            one term per pair on the whole responses (the ordinary RM loss).
        pad_rule: how prefixes past the end of the shorter response are compared (see
            :mod:`pargs.prefixes`; the paper's rule is ``"longest"``).
        weighting: dense path: ``"term"``: every (pair, prefix) term weighs the same (like one row
            per prefix pair) within a batch; ``"pair"``: every pair does, which also makes a batch split
            over DDP processes weigh exactly like the whole batch on one.
        margin: constant margin subtracted from r_chosen - r_rejected (a record's own ``margin`` wins).
        center_coef: weight of the reward-centring penalty ``mean((r_w + r_l)^2)``.
        lora: train LoRA adapters (and the head) instead of every weight; None trains everything.
        lr: peak learning rate.
        weight_decay: AdamW weight decay.
        warmup_steps: linear warm-up steps before the cosine decay.
        prefix_fractions: response fractions at which validation accuracy is also reported.
        export_dir: save the trained model here as a Hugging Face directory at the end of ``fit``.
        gradient_checkpointing: recompute activations in the backward pass to save memory.
        fsdp2: shard every transformer block and the root with FSDP2 ``fully_shard`` in
            ``configure_model`` (use with ``ModelParallelStrategy``; runs on CPU with gloo too).
    """

    lora_task_type = "SEQ_CLS"  # the reward head stays fully trainable next to the adapters

    def __init__(
        self,
        model: ModelSpec,
        objective: Literal["partial", "full"] = "partial",
        pad_rule: Literal["longest", "shortest"] = "longest",
        weighting: Literal["term", "pair"] = "term",
        margin: float = 0.0,
        center_coef: float = 0.0,
        lora: LoraSpec | None = None,
        lr: float = 1e-4,
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        prefix_fractions: Sequence[float] = (0.25, 0.5, 0.75, 1.0),
        export_dir: str | None = None,
        gradient_checkpointing: bool = False,
        fsdp2: bool = False,
    ) -> None:
        super().__init__(model)
        if objective not in ("partial", "full"):
            raise ConfigError(f"objective must be 'partial' or 'full', got {objective!r}")
        check_pad_rule(pad_rule)
        self.save_plain_hyperparameters()
        self.lora_spec = LoraSpec(**lora) if isinstance(lora, dict) else lora

    def build_model(self):
        return load_reward_model(self.spec, self.tokenizer)  # LoRA adapters: added by configure_model

    def on_fit_start(self) -> None:
        super().on_fit_start()
        data = getattr(self.trainer, "datamodule", None)
        rows = getattr(getattr(data, "hparams", None), "prefix_rows", None)
        hp = self.hparams
        if rows is not None and hp.objective == "full":
            raise ConfigError(
                "data.prefix_rows materialises prefixes for the partial objective; with "
                "objective: full set data.init_args.prefix_rows: null"
            )
        if rows is not None and data.hparams.pad_rule != hp.pad_rule:
            raise ConfigError(
                f"data pad_rule {data.hparams.pad_rule!r} differs from the model's {hp.pad_rule!r}: "
                "set both to the same rule"
            )
        prefix_weighting = getattr(data.hparams, "prefix_weighting", "term") if rows is not None else None
        if rows == "all" and hp.weighting != "term":
            raise ConfigError(
                "prefix_rows: all holds every prefix term once, so every term weighs the same: use "
                "weighting: term, or a ratio of prefix_rows with prefix_weighting: pair"
            )
        if rows not in (None, "all") and prefix_weighting != hp.weighting:
            raise ConfigError(
                f"data prefix_weighting {prefix_weighting!r} differs from the model's weighting "
                f"{hp.weighting!r}: set both to the same"
            )
        if rows is None and hp.objective == "partial" and not is_causal_reward_model(self.model):
            raise ConfigError(
                f"{type(self.model).__name__} is an encoder: it cannot read every prefix's reward from one pass. "
                "Set data.init_args.prefix_rows to a ratio (the paper: 1, 1.5, 2, 3) or 'all'"
            )

    # ------------------------------------------------------------------------------ losses
    def _kwargs(self, batch: dict) -> dict:
        margin = batch.get("margin")
        return {
            "margin": margin if margin is not None else (self.hparams.margin or None),
            "center_coef": self.hparams.center_coef,
        }

    @staticmethod
    def _lengths(batch: dict) -> dict:
        b = batch["input_ids"].shape[0] // 2
        pl, rl = batch["prompt_len"], batch["response_len"]
        return {"prompt_len_w": pl[:b], "len_w": rl[:b], "prompt_len_l": pl[b:], "len_l": rl[b:]}

    def _loss(self, batch: dict) -> torch.Tensor:
        hp = self.hparams
        dense = hp.objective == "partial" and not batch["prefix_rows"] and is_causal_reward_model(self.model)
        if dense:
            rewards, _ = token_rewards(self.model, batch["input_ids"], batch["attention_mask"])
            b = rewards.shape[0] // 2
            return partial_bt_loss(
                rewards[:b],
                rewards[b:],
                **self._lengths(batch),
                pad_rule=hp.pad_rule,
                weighting=hp.weighting,
                **self._kwargs(batch),
            )
        # one term per row: whole pairs (objective "full") or materialised prefix pairs
        r = rewards_at(
            self.model,
            batch["input_ids"],
            batch["attention_mask"],
            final_positions(batch["prompt_len"], batch["response_len"]),
        )
        b = r.shape[0] // 2
        return bradley_terry_loss(r[:b], r[b:], **self._kwargs(batch))

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss = self._loss(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["input_ids"].shape[0] // 2)
        return loss

    # -------------------------------------------------------------------------- validation
    def validation_step(self, batch: dict, batch_idx: int) -> None:
        lens = self._lengths(batch)
        n = lens["len_w"].shape[0]
        fractions = list(self.hparams.prefix_fractions)
        whole = torch.maximum(lens["len_w"], lens["len_l"])
        lengths = [whole] + [
            prefix_fraction_lengths(lens["len_w"], lens["len_l"], f, self.hparams.pad_rule) for f in fractions
        ]
        (full_w, full_l), *prefixes = pair_prefix_scores(
            self.model, batch["input_ids"], batch["attention_mask"], **lens, lengths=lengths
        )
        self.log("val/acc", agreement(full_w, full_l).mean(), prog_bar=True, batch_size=n, sync_dist=True)
        for f, (pw, pl) in zip(fractions, prefixes):
            self.log(f"val/acc@{round(f * 100)}%", agreement(pw, pl).mean(), batch_size=n, sync_dist=True)
        # the loss on full sequences only, comparable across objectives and model families
        self.log("val/full_loss", bradley_terry_loss(full_w, full_l), batch_size=n, sync_dist=True)
        if is_causal_reward_model(self.model) or self.hparams.objective == "full":
            self.log("val/loss", self._loss(batch), prog_bar=True, batch_size=n, sync_dist=True)
