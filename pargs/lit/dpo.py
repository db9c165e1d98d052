"""Direct Preference Optimization (Rafailov et al., 2023): the paper's offline DPO baseline.

The policy is trained on the same preference pairs as the reward models (``PreferenceDataModule``
batches: the B chosen rows, then the B rejected rows) with the sigmoid DPO loss
:func:`pargs.losses.dpo_loss`; the log-probability of a response is the sum over its tokens
(:func:`pargs.losses.response_logprobs`).

Where the frozen reference's log-probabilities come from:

- ``reference: null`` (default) -- the reference is the initial policy.
  With ``lora`` it is the base model with the adapters switched off: no second copy exists.
  Without LoRA, ``reference_logprobs: online`` keeps a frozen copy of the initial policy, while
  ``precompute`` scores every pair with the policy itself before its first update and keeps only
  those numbers (two floats per pair), so no second copy is ever held.
- ``reference: {path: ...}`` -- another model. ``online`` keeps it loaded; ``precompute`` loads it,
  scores every pair once and frees it.

``precompute`` runs at the start of ``fit`` over the datamodule's train and validation pairs (shared
out across ranks and gathered), caches the numbers per (split, pair id) and stores them in
checkpoints, so a resumed run never recomputes them with updated weights. It needs a datamodule
(``fit(model, datamodule=...)``, as the CLI does).

``fsdp2: true`` shards the policy with FSDP2 ``fully_shard`` under ``ModelParallelStrategy`` (as for
reward training); it goes with ``reference_logprobs: precompute``, so no unsharded reference is held.

At the end of ``fit`` the policy is exported as a plain Hugging Face directory (LoRA adapters merged
in), which ``DecodeModule`` loads as a named policy.
"""

from __future__ import annotations

import itertools
import logging
from contextlib import nullcontext
from typing import Literal

import torch
import torch.distributed as dist
from lightning.pytorch.utilities import move_data_to_device
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from pargs.errors import ConfigError
from pargs.lit.pretrained_module import PretrainedModule
from pargs.losses import dpo_loss, response_logprobs
from pargs.models.dropout import disable_dropout
from pargs.models.loading import ModelSpec, load_causal_lm
from pargs.models.lora import LoraSpec
from pargs.models.reference import frozen_reference

log = logging.getLogger(__name__)

CHECKPOINT_KEY = "dpo_reference_logprobs"


def policy_logprobs(model: torch.nn.Module, batch: dict) -> torch.Tensor:
    """``[2B]`` summed response log-probabilities of a pair batch under a causal LM."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    return response_logprobs(logits, batch["input_ids"], batch["prompt_len"], batch["response_len"])


class DPOModule(PretrainedModule):
    """Train a policy with the sigmoid DPO loss on preference pairs (see the module docstring).

    Args:
        model: the policy to train, usually the SFT reference model's directory.
        beta: the DPO temperature (0.1 in the paper and the DPO paper's main runs).
        reference: the frozen reference model; None: the initial policy (module docstring).
        reference_logprobs: ``"online"``: a reference forward pass every step; ``"precompute"``: one
            pass over all pairs at the start of ``fit``, cached per pair id (module docstring).
        lora: train LoRA adapters instead of every weight (the paper: r = 16, alpha = 16); None
            trains the whole model.
        disable_dropout: switch dropout off in the policy (and reference), so log-probabilities
            are deterministic.
        lr: peak learning rate.
        weight_decay: AdamW weight decay.
        warmup_steps: linear warm-up steps before the cosine decay.
        export_dir: save the trained policy here (LoRA merged) as a Hugging Face directory.
        gradient_checkpointing: recompute activations in the backward pass to save memory.
        fsdp2: shard the policy per transformer block with FSDP2 ``fully_shard`` in
            ``configure_model`` (with ``ModelParallelStrategy``; needs ``reference_logprobs: precompute``).
    """

    def __init__(
        self,
        model: ModelSpec,
        beta: float = 0.1,
        reference: ModelSpec | None = None,
        reference_logprobs: Literal["online", "precompute"] = "online",
        lora: LoraSpec | None = None,
        disable_dropout: bool = True,
        lr: float = 5e-6,
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        export_dir: str | None = None,
        gradient_checkpointing: bool = False,
        fsdp2: bool = False,
    ) -> None:
        super().__init__(model)
        if reference_logprobs not in ("online", "precompute"):
            raise ConfigError(f"reference_logprobs must be 'online' or 'precompute', got {reference_logprobs!r}")
        if fsdp2 and reference_logprobs != "precompute":
            raise ConfigError(
                "fsdp2 shards the policy but an online reference would be a whole copy on every "
                "process: set reference_logprobs: precompute"
            )
        if not beta > 0:
            raise ConfigError(f"beta must be > 0, got {beta}")
        self.save_plain_hyperparameters()
        # structured arguments are kept as given (under LightningCLI, hparams hold their config dicts)
        self.reference_spec, self.lora_spec = reference, lora
        self.reference: torch.nn.Module | None = None
        #: precomputed reference log-probabilities: split -> pair id -> [chosen, rejected]
        self.reference_cache: dict[str, dict[str, list[float]]] = {}

    # ------------------------------------------------------------------------------- models
    def build_model(self):
        model = load_causal_lm(self.spec, self.tokenizer)  # LoRA adapters: added by configure_model
        return disable_dropout(model) if self.hparams.disable_dropout else model

    def configure_model(self) -> None:
        if self.model is not None:
            return
        super().configure_model()
        hp = self.hparams
        if hp.reference_logprobs == "online":
            # another model or a frozen copy of the initial policy; with LoRA alone, the policy with adapters off
            if self.reference_spec is not None or self.lora_spec is None:
                self.reference = frozen_reference(
                    self.reference_spec, self.tokenizer, self.model, no_dropout=hp.disable_dropout
                )

    def _reference_context(self, reference: torch.nn.Module | None = None):
        """``(model, context)`` that computes reference log-probabilities now, or None when none can."""
        if reference is not None:
            return reference, nullcontext()
        if self.reference is not None:
            return self.reference, nullcontext()
        if self.lora_spec is not None:
            return self.model, self.model.disable_adapter()
        return None

    # -------------------------------------------------------------- reference log-probabilities
    def _cached(self, batch: dict, split: str) -> torch.Tensor | None:
        cache = self.reference_cache.get(split)
        if not cache:
            return None
        try:
            rows = [cache[str(i)] for i in batch["ids"]]
        except KeyError:
            return None
        values = torch.tensor(rows, dtype=torch.float32, device=self.device)  # [B, 2]
        return torch.cat([values[:, 0], values[:, 1]])

    def reference_logps(self, batch: dict, split: str) -> torch.Tensor:
        """``[2B]`` reference log-probabilities of the batch's responses: cached, or computed now."""
        cached = self._cached(batch, split)
        if cached is not None:
            return cached
        ctx = self._reference_context()
        if ctx is None:
            missing = [str(i) for i in batch["ids"] if str(i) not in self.reference_cache.get(split, {})]
            raise RuntimeError(
                f"no reference log-probabilities for {split} pairs {missing[:3]}: with reference_logprobs: precompute "
                "they are computed at the start of `fit` for the datamodule's train and val pairs only; evaluate "
                "other data with reference_logprobs: online (or with lora, whose reference is always available)"
            )
        model, context = ctx
        with torch.no_grad(), context:
            return policy_logprobs(model, batch).float()

    def on_fit_start(self) -> None:
        super().on_fit_start()
        if self.hparams.reference_logprobs != "precompute" or self.reference_cache:
            return
        datamodule = self.trainer.datamodule
        if datamodule is None:
            raise ConfigError(
                "reference_logprobs: precompute reads every pair from the datamodule before training; pass the pairs "
                "as a datamodule (fit(model, datamodule=...), as `pargs fit` does) or use reference_logprobs: online"
            )
        temporary = None
        if self.reference_spec is not None:
            temporary = frozen_reference(
                self.reference_spec, self.tokenizer, no_dropout=self.hparams.disable_dropout
            ).to(self.device)
        # without LoRA and without `reference`, the policy itself is the reference: it has not moved yet
        model, context = self._reference_context(temporary) or (self.model, nullcontext())
        splits = {"train": datamodule.train_dataloader(), "val": datamodule.val_dataloader()}
        was_training = model.training
        model.eval()
        with torch.no_grad(), context:
            for split, loaders in splits.items():
                for loader in loaders if isinstance(loaders, (list, tuple)) else [loaders]:
                    self.reference_cache.setdefault(split, {}).update(self._score_all(model, loader, split))
        model.train(was_training)
        del temporary
        if self.global_rank == 0:
            log.info(
                "precomputed reference log-probabilities of %s pairs",
                ", ".join(f"{len(v)} {k}" for k, v in self.reference_cache.items()),
            )

    def _score_all(self, model: torch.nn.Module, loader: DataLoader, split: str) -> dict[str, list[float]]:
        """Reference log-probabilities of every pair of ``loader`` (each rank scores a share; all get all)."""
        # its own generator: iterating a DataLoader draws a seed, which must not shift the training shuffle
        ordered = DataLoader(
            loader.dataset,
            batch_size=loader.batch_size,
            shuffle=False,
            collate_fn=loader.collate_fn,
            num_workers=loader.num_workers,
            generator=torch.Generator().manual_seed(0),
        )
        world, rank = self.trainer.world_size, self.global_rank
        scores: dict[str, list[float]] = {}
        share = itertools.islice(ordered, rank, None, world)  # batches rank, rank + world, ...
        # every rank runs the same number of forward passes (a sharded model gathers its weights in each)
        rounds = -(-len(ordered) // world)
        for _ in tqdm(range(rounds), desc=f"reference log-probs ({split})", disable=rank != 0, leave=False):
            batch = next(share, None)
            if batch is None:  # this rank's share is a batch short: run the first batch again, discard it
                policy_logprobs(model, move_data_to_device(next(iter(ordered)), self.device))
                continue
            batch = move_data_to_device(batch, self.device)
            logps = policy_logprobs(model, batch).float().cpu()
            b = logps.shape[0] // 2
            for pair_id, c, r in zip(batch["ids"], logps[:b].tolist(), logps[b:].tolist()):
                scores[str(pair_id)] = [c, r]
        if world > 1 and dist.is_available() and dist.is_initialized():
            shares: list = [None] * world
            dist.all_gather_object(shares, scores)
            scores = {k: v for part in shares for k, v in part.items()}
        return scores

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        if self.reference_cache:
            checkpoint[CHECKPOINT_KEY] = self.reference_cache

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        self.reference_cache = checkpoint.get(CHECKPOINT_KEY, {})

    # ---------------------------------------------------------------------------- training
    def dpo_terms(self, batch: dict, split: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(loss, chosen_rewards, rejected_rewards, policy_logps)`` of a pair batch.

        The rewards are DPO's implicit rewards ``beta * (log pi - log pi_ref)`` (detached)."""
        logps = policy_logprobs(self.model, batch)
        ref = self.reference_logps(batch, split).to(logps.dtype)
        b = logps.shape[0] // 2
        loss, r_chosen, r_rejected = dpo_loss(logps[:b], logps[b:], ref[:b], ref[b:], self.hparams.beta)
        return loss, r_chosen, r_rejected, logps

    def _step(self, batch: dict, split: str) -> torch.Tensor:
        loss, r_chosen, r_rejected, logps = self.dpo_terms(batch, split)
        b = r_chosen.shape[0]
        log_kw = {"batch_size": b, "sync_dist": split != "train"}
        self.log(f"{split}/loss", loss, prog_bar=True, **log_kw)
        self.log(f"{split}/rewards_chosen", r_chosen.mean(), **log_kw)
        self.log(f"{split}/rewards_rejected", r_rejected.mean(), **log_kw)
        self.log(f"{split}/margin", (r_chosen - r_rejected).mean(), **log_kw)
        self.log(f"{split}/acc", (r_chosen > r_rejected).float().mean(), prog_bar=split != "train", **log_kw)
        self.log(f"{split}/logps_chosen", logps[:b].detach().mean(), **log_kw)
        return loss

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._step(batch, "val")
