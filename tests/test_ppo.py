"""PPO: GAE, the KL-shaped rewards and the clipped objectives against hand calculations, the rollout
tensors against token-by-token forward passes, and PPO raising the oracle reward of a tiny SFT model."""

from __future__ import annotations

import math

import lightning as L
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from pargs.advantages import gae, kl_penalized_rewards, whiten
from pargs.datamodules import PromptDataModule, SFTDataModule
from pargs.decoding.build import RewardSpec
from pargs.decoding.engine import Stopping, generate
from pargs.decoding.methods import preset
from pargs.decoding.noise import stable_seed
from pargs.lit.causal_lm import CausalLMModule
from pargs.lit.ppo import PPOModule
from pargs.losses import ppo_policy_loss, ppo_value_loss
from pargs.models.encoding import encode_prompt
from pargs.models.loading import ModelSpec
from pargs.models.reward_model import sequence_rewards
from pargs.records import load_prompts
from pargs.tasks.synthetic import oracle_reward
from pargs.tasks.synthetic_prepare import SyntheticSizes, prepare_synthetic


def _trainer(tmp_path, **kw) -> L.Trainer:
    return L.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        **kw,
    )


def test_gae_hand_example():
    rewards = torch.tensor([[0.0, 0.0, 1.0], [0.5, 0.0, 0.0]])
    values = torch.tensor([[0.5, 0.2, 0.4], [0.3, 9.0, 9.0]])  # row 1 has one token: its 9s are padding
    mask = torch.tensor([[True, True, True], [True, False, False]])
    adv, ret = gae(rewards, values, mask, gamma=0.9, lam=0.8)
    # row 0, backwards: delta2 = 1 - 0.4 = 0.6; delta1 = 0.9 * 0.4 - 0.2 = 0.16; delta0 = 0.9 * 0.2 - 0.5 = -0.32
    # A2 = 0.6, A1 = 0.16 + 0.72 * 0.6 = 0.592, A0 = -0.32 + 0.72 * 0.592 = 0.10624
    # row 1: delta0 = 0.5 - 0.3 = 0.2 (the state after its only token is terminal)
    torch.testing.assert_close(adv, torch.tensor([[0.10624, 0.592, 0.6], [0.2, 0.0, 0.0]]))
    torch.testing.assert_close(ret, torch.tensor([[0.60624, 0.792, 1.0], [0.5, 0.0, 0.0]]))
    # gamma = lambda = 1: the advantage is the Monte-Carlo return minus the value
    adv1, _ = gae(rewards, values, mask, gamma=1.0, lam=1.0)
    torch.testing.assert_close(adv1, torch.tensor([[0.5, 0.8, 0.6], [0.2, 0.0, 0.0]]))


def test_kl_penalized_rewards_and_whitening_hand_values():
    logp = torch.tensor([[-1.0, -2.0, -0.5], [-0.2, 0.0, 0.0]])
    ref = torch.tensor([[-1.5, -1.0, -0.5], [-0.4, 0.0, 0.0]])
    mask = torch.tensor([[True, True, True], [True, False, False]])
    r = kl_penalized_rewards(torch.tensor([2.0, -1.0]), logp, ref, mask, kl_coef=0.1)
    # -0.1 * (logp - ref) per token; the score lands on each row's last token
    torch.testing.assert_close(r, torch.tensor([[-0.05, 0.1, 2.0], [-1.0 - 0.02, 0.0, 0.0]]))
    w = whiten(torch.tensor([[1.0, 2.0, 3.0], [4.0, 100.0, 100.0]]), mask)
    expected = (torch.tensor([1.0, 2.0, 3.0, 4.0]) - 2.5) / math.sqrt(1.25)
    torch.testing.assert_close(w[mask], expected)
    assert w[~mask].abs().max() == 0


def test_clipped_policy_and_value_objectives_hand_values():
    # per token: (log ratio, advantage); eps = 0.2
    log_ratio = torch.tensor([[0.5, -0.5, -0.1, 0.1, math.log(0.5), 3.0]])
    adv = torch.tensor([[1.0, -1.0, 2.0, -2.0, 1.0, 5.0]])
    mask = torch.tensor([[True, True, True, True, True, False]])  # the last token is padding
    old = torch.full_like(log_ratio, -1.0)
    loss, clip_fraction, _ = ppo_policy_loss(old + log_ratio, old, adv, mask, clip_range=0.2)
    # max(-A r, -A clip(r)): r = e^.5 > 1.2 with A > 0 -> -1.2 (clipped); r = e^-.5 < 0.8 with A < 0 -> 0.8 (clipped);
    # inside the range both terms agree; r = 0.5 with A > 0 -> the unclipped -0.5 is the larger (pessimistic) one
    terms = [-1.2, 0.8, -2 * math.exp(-0.1), 2 * math.exp(0.1), -0.5]
    assert loss.item() == pytest.approx(sum(terms) / 5, abs=1e-6)
    assert clip_fraction.item() == pytest.approx(2 / 5)

    values, old_values = torch.tensor([[1.0, 0.0, 7.0]]), torch.tensor([[0.5, 0.1, 0.0]])
    returns, vmask = torch.tensor([[2.0, -1.0, 0.0]]), torch.tensor([[True, True, False]])
    vloss, vclip = ppo_value_loss(values, old_values, returns, vmask, clip_range=0.2)
    # token 1: (1 - 2)^2 = 1 vs clipped 0.5 + 0.2 = 0.7 -> (0.7 - 2)^2 = 1.69; token 2: both (0 + 1)^2 = 1
    assert vloss.item() == pytest.approx(0.5 * (1.69 + 1.0) / 2, abs=1e-6)
    assert vclip.item() == pytest.approx(0.5)
    plain, _ = ppo_value_loss(values, old_values, returns, vmask, clip_range=None)
    assert plain.item() == pytest.approx(0.5 * (1.0 + 1.0) / 2, abs=1e-6)


def test_rollout_tensors_match_token_by_token_forward_passes(model_dirs):
    path = str(model_dirs["reference"])
    module = PPOModule(
        ModelSpec(path=path),
        RewardSpec(oracle=True),
        value_model=ModelSpec(path=str(model_dirs["rm"])),
        max_new_tokens=6,
        minibatch_size=2,
    )
    module.configure_model()
    prompts = [
        "write a review of the hotel about the staff :",
        "write a short review of the phone about the price :",
        "write a detailed review of the movie about the plot :",
    ]  # different lengths: left padding
    seq = module.rollout(prompts, torch.tensor([stable_seed(0, i) for i in range(3)]))
    lm = AutoModelForCausalLM.from_pretrained(path).eval()
    tok = module.tokenizer
    never = [tok.pad_token_id, tok.unk_token_id]
    for b, prompt in enumerate(prompts):
        ids = encode_prompt(tok, prompt)
        response = seq["response_ids"][b][seq["response_mask"][b]].tolist()
        assert len(response) >= 1
        for j, token in enumerate(response):
            prefix = torch.tensor([ids + response[:j]])
            logits = lm(input_ids=prefix).logits[0, -1]
            logits[never] = float("-inf")
            assert seq["old_logp"][b, j].item() == pytest.approx(torch.log_softmax(logits, -1)[token].item(), abs=1e-5)
            value = sequence_rewards(module.value_model, prefix, torch.ones_like(prefix))
            assert seq["old_values"][b, j].item() == pytest.approx(value.item(), abs=1e-5)
        text = tok.decode(response, skip_special_tokens=True)
        assert seq["scores"][b].item() == pytest.approx(oracle_reward(prompt, text), abs=1e-6)
    torch.testing.assert_close(seq["ref_logp"], seq["old_logp"])  # the reference is the initial policy


def _rollout_with_extra_eos(model_dirs, tmp_path):
    """A PPO rollout of a policy whose generation config adds the unknown token to the EOS ids."""
    lm = AutoModelForCausalLM.from_pretrained(model_dirs["reference"])
    tok = AutoTokenizer.from_pretrained(model_dirs["reference"])
    lm.generation_config.eos_token_id = [tok.eos_token_id, tok.unk_token_id]  # unk ends a response: never masked
    lm.save_pretrained(tmp_path / "policy")
    tok.save_pretrained(tmp_path / "policy")
    module = PPOModule(
        ModelSpec(path=str(tmp_path / "policy")), RewardSpec(oracle=True), max_new_tokens=6, minibatch_size=2
    )
    module.configure_model()
    prompts = [
        "write a review of the hotel about the staff :",
        "write a short review of the phone about the price :",
        "write a detailed review of the movie about the plot :",
        "write a review of the book about the cover :",
    ]
    return module, prompts, module.rollout(prompts, torch.tensor([stable_seed(1, i) for i in range(len(prompts))]))


@pytest.mark.parametrize("engine_rule", ["shipped", "changed"])
def test_rollout_logprobs_are_those_of_the_distribution_the_engine_sampled_from(
    model_dirs, tmp_path, monkeypatch, engine_rule
):
    """PPO's log pi_old of each response token is its log-probability under the engine's masked distribution at
    that step (the engine's ``Stopping`` applied to a token-by-token forward pass), whatever the engine's rule is:
    "changed" alters the rule inside the engine only (EOS barred for two steps, one more token never sampled)."""
    _, _, shipped = _rollout_with_extra_eos(model_dirs, tmp_path / "shipped")
    banned = int(shipped["response_ids"][0, 0])  # a token the shipped rule samples with these seeds
    if engine_rule == "changed":
        for_models = Stopping.for_models

        def changed_rule(cls, *args, **kwargs):
            stop = for_models(*args, **kwargs)
            stop.min_new_tokens = 2
            stop.suppress_ids = torch.cat([stop.suppress_ids, torch.tensor([banned], device=stop.suppress_ids.device)])
            return stop

        monkeypatch.setattr(Stopping, "for_models", classmethod(changed_rule))
    module, prompts, seq = _rollout_with_extra_eos(model_dirs, tmp_path / engine_rule)
    tok, lm = module.tokenizer, module.model
    stop = Stopping.for_models(lm, tok, "cpu", max_new_tokens=6)
    assert tok.unk_token_id in stop.eos_ids.tolist() and tok.unk_token_id not in stop.suppress_ids.tolist()
    responses = [seq["response_ids"][b][seq["response_mask"][b]].tolist() for b in range(len(prompts))]
    if engine_rule == "changed":  # the engine did sample under the changed rule
        assert all(banned not in r for r in responses) and all(len(r) >= 2 for r in responses)
    for b, (prompt, response) in enumerate(zip(prompts, responses)):
        ids = encode_prompt(tok, prompt)
        for j, token in enumerate(response):
            with torch.no_grad():
                logits = lm(input_ids=torch.tensor([ids + response[:j]])).logits[:, -1]
            expected = torch.log_softmax(stop.mask_logits(logits, j), dim=-1)[0, token].item()
            assert seq["old_logp"][b, j].item() == pytest.approx(expected, abs=1e-5), (engine_rule, b, j)


@pytest.fixture(scope="module")
def sft_run(tmp_path_factory):
    """A tiny GPT-2 fine-tuned on the synthetic task's writer (a few seconds on 2 cores)."""
    out = tmp_path_factory.mktemp("ppo")
    sizes = SyntheticSizes(seed=0, n_sft=1500, n_sft_val=10, n_pairs=4, n_pairs_val=2, n_test=2)
    prepare_synthetic(out / "data", sizes)
    L.seed_everything(0)
    tokenizer = str(out / "data" / "tokenizer")
    config = {"model_type": "gpt2", "n_layer": 2, "n_embd": 64, "n_head": 2, "n_positions": 64}
    sft = CausalLMModule(
        ModelSpec(tokenizer=tokenizer, config=config), lr=3e-3, warmup_steps=10, export_dir=str(out / "sft")
    )
    data = SFTDataModule(str(out / "data" / "sft_train.jsonl"), tokenizer, batch_size=32, max_length=64)
    _trainer(out, max_epochs=3).fit(sft, datamodule=data)
    return out


def test_ppo_raises_the_oracle_reward_over_the_reference(sft_run):
    out = sft_run
    L.seed_everything(0)
    ppo = PPOModule(
        ModelSpec(path=str(out / "sft")),
        RewardSpec(oracle=True),
        max_new_tokens=24,
        minibatch_size=32,
        kl_coef=0.05,
        lr=1e-3,
        value_lr=3e-3,
        export_dir=str(out / "ppo"),
    )
    data = PromptDataModule(train_file=str(out / "data" / "prompts_train.jsonl"), batch_size=32)
    _trainer(out, max_epochs=2).fit(ppo, datamodule=data)  # 2 x 8 PPO iterations of 32 rollouts

    # the same prompts and per-row seeds for both models, decoded as the quickstart decodes (top-k sampling)
    tok = AutoTokenizer.from_pretrained(out / "sft")
    prompts = [r["prompt"] for r in load_prompts(out / "data" / "prompts_train.jsonl")][:50] * 4
    seeds = torch.tensor([stable_seed("eval", i) for i in range(len(prompts))])
    rewards = {}
    for name in ("sft", "ppo"):
        model = AutoModelForCausalLM.from_pretrained(out / name).eval()
        gen = generate(model, tok, prompts, preset("top-k"), seeds, max_new_tokens=24)
        rewards[name] = torch.tensor([oracle_reward(p, t) for p, t in zip(prompts, gen.texts)], dtype=torch.float64)
    diff = rewards["ppo"] - rewards["sft"]  # paired by prompt and seed
    stderr = diff.std().item() / math.sqrt(len(diff))
    assert diff.mean().item() > max(0.5, 5 * stderr), (
        f"PPO {rewards['ppo'].mean():.3f} vs reference {rewards['sft'].mean():.3f}: "
        f"gain {diff.mean():.3f} +- {stderr:.3f}"
    )
