"""PPO for RLHF (Schulman et al., 2017; Ziegler et al., 2019; Ouyang et al., 2022): the paper's PPO baseline.

One training step is one PPO iteration on a batch of prompts:

1. **Rollout.** Sample ``samples_per_prompt`` responses per prompt from the current policy with the
   decoding engine: plain sampling at temperature 1 over the whole vocabulary, so the samples come
   from the very distribution whose log-probabilities are optimised (the tokens the engine's stopping
   rule never emits at a step, such as padding, are masked out of the log-probabilities too, by that
   same rule: :func:`sampling_mask`). Score each response with
   ``reward`` (a reward model or the synthetic task's oracle).
2. **Old quantities.** One no-grad forward each of the policy, the frozen reference and the value
   network over ``prompt + response`` gives, per response token, log pi_old, log pi_ref and the
   value of the state before the token.
3. **Advantages.** Per-token rewards ``-kl_coef * (log pi_old - log pi_ref)`` plus the reward at the
   last token; generalized advantage estimation (``gamma``, ``lam``); advantages whitened over the batch.
4. **Updates.** ``ppo_epochs`` passes over the rollouts in shuffled minibatches, each one optimizer
   step on the clipped policy objective + ``vf_coef`` x the clipped value loss (gradient norm clipped).

The value network is a separate causal ``*ForSequenceClassification`` with one output per position,
read like a partial-sequence reward model: the value of the state before response token j is read
at the token before it. By default it is the policy checkpoint with a fresh head; initialising it
from the reward model instead is one config line (``value_model: {path: <rm>}``).

Manual optimisation with several updates per batch runs on one device (a DDP run would need its
gradient synchronisation wired into every minibatch step; it fails early instead).
"""

from __future__ import annotations

import torch
from torch import Tensor

from pargs.advantages import gae, kl_penalized_rewards, whiten
from pargs.decoding.build import RewardSpec, text_reward
from pargs.decoding.engine import Stopping, encode_prompts, generate
from pargs.decoding.methods import DecodeMethod
from pargs.decoding.noise import stable_seed
from pargs.errors import ConfigError
from pargs.lit.optim import decay_groups, warmup_cosine
from pargs.lit.pretrained_module import PretrainedModule
from pargs.losses import masked_mean, ppo_policy_loss, ppo_value_loss, token_logprobs
from pargs.models.dropout import disable_dropout
from pargs.models.encoding import pad_batch
from pargs.models.loading import ModelSpec, load_causal_lm, load_reward_model
from pargs.models.reference import frozen_reference
from pargs.models.reward_model import position_ids_from_mask, require_causal_reward_model, token_rewards


class PPOModule(PretrainedModule):
    """Train a policy with PPO against a reward, with a KL penalty to the frozen reference (module docstring).

    Batches are lists of prompt records (``PromptDataModule`` with ``train_file``).

    Args:
        model: the policy to train, usually the SFT reference model's directory.
        reward: the reward of complete responses (a reward model, or ``{oracle: true}``).
        reference: the frozen reference for the KL penalty; None: a frozen copy of the initial policy.
        value_model: the value network; None: the policy checkpoint with a fresh one-output head.
        kl_coef: weight of the per-token KL penalty ``log pi - log pi_ref`` in the reward.
        gamma: discount of GAE.
        lam: lambda of GAE.
        clip_range: PPO's epsilon for the policy ratio.
        value_clip_range: epsilon for the value clipping (None: unclipped squared error).
        vf_coef: weight of the value loss in the summed loss.
        ppo_epochs: passes over each batch of rollouts.
        minibatch_size: rollouts per optimizer step.
        samples_per_prompt: responses sampled per prompt in each rollout.
        max_new_tokens: the most tokens per sampled response.
        stop_strings: a sampled response also ends when its text contains one of these.
        whiten_advantages: normalise advantages to mean 0 and std 1 over each batch of rollouts.
        max_grad_norm: clip the gradient norm of each update to this (None: no clipping).
        seed: seed of the rollout sampling (each row's seed derives from it, the prompt and the step).
        lr: peak learning rate of the policy.
        value_lr: peak learning rate of the value network (None: ``lr``).
        weight_decay: AdamW weight decay.
        warmup_steps: linear warm-up (in PPO iterations) before the cosine decay.
        export_dir: save the trained policy here as a Hugging Face directory at the end of ``fit``.
        gradient_checkpointing: recompute the policy's activations in the backward pass to save memory.
    """

    def __init__(
        self,
        model: ModelSpec,
        reward: RewardSpec,
        reference: ModelSpec | None = None,
        value_model: ModelSpec | None = None,
        kl_coef: float = 0.05,
        gamma: float = 1.0,
        lam: float = 0.95,
        clip_range: float = 0.2,
        value_clip_range: float | None = 0.2,
        vf_coef: float = 0.5,
        ppo_epochs: int = 4,
        minibatch_size: int = 16,
        samples_per_prompt: int = 1,
        max_new_tokens: int = 64,
        stop_strings: list[str] | None = None,
        whiten_advantages: bool = True,
        max_grad_norm: float | None = 1.0,
        seed: int = 0,
        lr: float = 1e-5,
        value_lr: float | None = None,
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        export_dir: str | None = None,
        gradient_checkpointing: bool = False,
    ) -> None:
        super().__init__(model)
        for name, value in (
            ("ppo_epochs", ppo_epochs),
            ("minibatch_size", minibatch_size),
            ("samples_per_prompt", samples_per_prompt),
            ("max_new_tokens", max_new_tokens),
        ):
            if value < 1:
                raise ConfigError(f"{name} must be >= 1, got {value}")
        if not 0 < clip_range < 1 or kl_coef < 0 or not 0 <= gamma <= 1 or not 0 <= lam <= 1:
            raise ConfigError(
                f"need 0 < clip_range < 1, kl_coef >= 0 and gamma, lam in [0, 1]; got clip_range={clip_range}, "
                f"kl_coef={kl_coef}, gamma={gamma}, lam={lam}"
            )
        self.save_plain_hyperparameters()
        # structured arguments are kept as given (under LightningCLI, hparams hold their config dicts)
        self.reward_spec, self.reference_spec, self.value_spec = reward, reference, value_model
        self.automatic_optimization = False
        self.reference = None
        self.value_model = None
        self.reward_model = None
        self._reward = None
        self.rollout_method = DecodeMethod("ppo-rollout", kind="sample")  # the policy itself: temperature 1, all tokens

    # ------------------------------------------------------------------------------- models
    def build_model(self):
        return disable_dropout(load_causal_lm(self.spec, self.tokenizer))

    def configure_model(self) -> None:
        if self.model is not None:
            return
        super().configure_model()
        self.reference = frozen_reference(self.reference_spec, self.tokenizer, self.model)  # None: the initial policy
        value = load_reward_model(self.value_spec or self.spec, self.tokenizer)
        self.value_model = disable_dropout(require_causal_reward_model(value, "PPO's value network"))
        reward_model, reward_tokenizer = self.reward_spec.load()
        self.reward_model = reward_model
        self._reward = text_reward(self.reward_spec, reward_model, reward_tokenizer)

    def configure_optimizers(self):
        hp = self.hparams
        groups = decay_groups(self.model, hp.weight_decay) + decay_groups(
            self.value_model, hp.weight_decay, lr=hp.value_lr if hp.value_lr is not None else hp.lr
        )
        optimizer = torch.optim.AdamW(groups, lr=hp.lr)
        # stepped once per PPO iteration (training batch), whatever the number of minibatch updates
        scheduler = warmup_cosine(optimizer, hp.warmup_steps, self.trainer.estimated_stepping_batches)
        return {"optimizer": optimizer, "lr_scheduler": scheduler}

    def on_fit_start(self) -> None:
        super().on_fit_start()
        if self.trainer.world_size > 1:
            raise ConfigError("PPOModule runs on one device (several manual updates per batch); set trainer.devices: 1")

    # ------------------------------------------------------------------------- forward passes
    def response_logprobs(self, model, seq: dict, rows: Tensor | slice = slice(None)) -> Tensor:
        """``[N, R]`` log-probabilities of the response tokens (0 past each response's end)."""
        p = seq["prompt_width"]
        r = seq["response_ids"][rows]
        out = model(
            input_ids=seq["input_ids"][rows],
            attention_mask=seq["attention_mask"][rows],
            position_ids=seq["position_ids"][rows],
        )
        logits = out.logits[:, p - 1 : p - 1 + r.shape[1]] + seq["sampling_mask"]  # the distribution sampled from
        return token_logprobs(logits, r).masked_fill(~seq["response_mask"][rows], 0.0)

    def response_values(self, seq: dict, rows: Tensor | slice = slice(None)) -> Tensor:
        """``[N, R]`` values of the state before each response token (0 past each response's end)."""
        p = seq["prompt_width"]
        values, _ = token_rewards(
            self.value_model, seq["input_ids"][rows], seq["attention_mask"][rows], seq["position_ids"][rows]
        )
        width = seq["response_ids"].shape[1]
        return values[:, p - 1 : p - 1 + width].float().masked_fill(~seq["response_mask"][rows], 0.0)

    # ------------------------------------------------------------------------------ rollouts
    @torch.no_grad()
    def rollout(self, prompts: list[str], seeds: Tensor) -> dict:
        """Sample and score responses, and compute everything PPO's updates need (module docstring, 1-3)."""
        hp = self.hparams
        was_training = self.model.training
        self.model.eval()  # eval: KV-cache generation (gradient checkpointing turns the cache off in training)
        limits = {"max_new_tokens": hp.max_new_tokens, "stop_strings": hp.stop_strings or ()}
        gen = generate(self.model, self.tokenizer, prompts, self.rollout_method, seeds, **limits)
        scores = self._reward(prompts, gen.texts, gen.complete).to(self.device, torch.float32)
        prompt_ids, prompt_mask = encode_prompts(self.tokenizer, prompts)
        response_ids, response_mask = pad_batch(gen.token_ids, self.tokenizer.pad_token_id, side="right")
        mask = torch.cat([prompt_mask, response_mask], dim=1).to(self.device)
        seq = {
            "prompt_width": prompt_ids.shape[1],
            "input_ids": torch.cat([prompt_ids, response_ids], dim=1).to(self.device),
            "attention_mask": mask,
            "position_ids": position_ids_from_mask(mask),
            "response_ids": response_ids.to(self.device),
            "response_mask": response_mask.bool().to(self.device),
            # the engine's rule under these settings: the tokens each response step never samples
            "sampling_mask": sampling_mask(
                Stopping.for_models(self.model, self.tokenizer, self.device, **limits),
                response_ids.shape[1],
                self.model.config.get_text_config().vocab_size,
            ),
        }
        old_logp, ref_logp, old_values = [], [], []
        for rows in torch.arange(len(prompts), device=self.device).split(hp.minibatch_size):
            old_logp.append(self.response_logprobs(self.model, seq, rows))
            ref_logp.append(self.response_logprobs(self.reference, seq, rows))
            old_values.append(self.response_values(seq, rows))
        self.model.train(was_training)
        seq["old_logp"], seq["ref_logp"], seq["old_values"] = (torch.cat(x) for x in (old_logp, ref_logp, old_values))
        m = seq["response_mask"]
        rewards = kl_penalized_rewards(scores, seq["old_logp"], seq["ref_logp"], m, hp.kl_coef)
        advantages, returns = gae(rewards, seq["old_values"], m, hp.gamma, hp.lam)
        seq["advantages"] = whiten(advantages, m) if hp.whiten_advantages else advantages
        seq["returns"] = returns
        seq["scores"] = scores
        seq["stats"] = {
            "reward": scores.mean(),
            "kl": ((seq["old_logp"] - seq["ref_logp"]) * m).sum(1).mean(),  # per response, k1 estimate
            "response_tokens": m.sum(1).float().mean(),
            "complete": torch.tensor(gen.complete, dtype=torch.float32).mean(),
        }
        return seq

    # ------------------------------------------------------------------------------ training
    def ppo_loss(self, seq: dict, rows: Tensor) -> tuple[Tensor, dict]:
        """The summed clipped policy + value loss of the rollouts ``rows`` and its diagnostics."""
        hp = self.hparams
        m = seq["response_mask"][rows]
        logp = self.response_logprobs(self.model, seq, rows)
        values = self.response_values(seq, rows)
        pg_loss, clip_fraction, approx_kl = ppo_policy_loss(
            logp, seq["old_logp"][rows], seq["advantages"][rows], m, hp.clip_range
        )
        vf_loss, vf_clip_fraction = ppo_value_loss(
            values, seq["old_values"][rows], seq["returns"][rows], m, hp.value_clip_range
        )
        stats = {
            "pg_loss": pg_loss.detach(),
            "vf_loss": vf_loss.detach(),
            "clip_fraction": clip_fraction,
            "approx_kl": approx_kl,
            "vf_clip_fraction": vf_clip_fraction,
            "value_error": masked_mean((values.detach() - seq["returns"][rows]).abs(), m),
        }
        return pg_loss + hp.vf_coef * vf_loss, stats

    def training_step(self, batch: list[dict], batch_idx: int) -> None:
        hp = self.hparams
        prompts = [rec["prompt"] for rec in batch for _ in range(hp.samples_per_prompt)]
        seeds = torch.tensor(
            [
                stable_seed(hp.seed, rec["id"], s, self.global_step)
                for rec in batch
                for s in range(hp.samples_per_prompt)
            ]
        )
        seq = self.rollout(prompts, seeds)
        optimizer = self.optimizers()
        totals: dict[str, float] = {}
        updates = 0
        for _ in range(hp.ppo_epochs):
            for rows in torch.randperm(len(prompts), device=self.device).split(hp.minibatch_size):
                loss, stats = self.ppo_loss(seq, rows)
                optimizer.zero_grad()
                self.manual_backward(loss)
                if hp.max_grad_norm is not None:
                    self.clip_gradients(optimizer, gradient_clip_val=hp.max_grad_norm, gradient_clip_algorithm="norm")
                optimizer.step()
                updates += 1
                for k, v in stats.items():
                    totals[k] = totals.get(k, 0.0) + float(v)
        self.lr_schedulers().step()
        n = len(prompts)
        for k, v in seq["stats"].items():
            self.log(f"train/{k}", v, prog_bar=k in ("reward", "kl"), batch_size=n)
        for k, v in totals.items():
            self.log(f"train/{k}", v / updates, batch_size=n)


def sampling_mask(stop: Stopping, steps: int, vocab_size: int) -> Tensor:
    """``[steps, vocab_size]``: 0 where step j of the engine may sample a token, -inf where it never does.

    Built with the engine's own rule (:meth:`Stopping.mask_logits`), so response logits plus this mask give
    the very distribution each response token was sampled from, whatever that rule becomes.
    """
    device = stop.suppress_ids.device
    return torch.cat([stop.mask_logits(torch.zeros(1, vocab_size, device=device), j) for j in range(steps)])
