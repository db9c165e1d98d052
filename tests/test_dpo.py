"""DPO: the loss against log-probabilities computed token by token, LoRA's reference and export,
and precomputed reference log-probabilities against online ones."""

from __future__ import annotations

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM

from pargs.datamodules import PreferenceDataModule
from pargs.datamodules.collate import PairCollator
from pargs.lit.dpo import DPOModule
from pargs.models.encoding import encode_pair
from pargs.models.loading import ModelSpec
from pargs.models.lora import LoraSpec, save_merged
from tests.conftest import make_lm
from tests.test_losses import PAIRS


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory, tokenizer):
    """A tiny LM that differs from the ``reference`` of ``model_dirs`` (another seed)."""
    path = tmp_path_factory.mktemp("policy")
    make_lm(tokenizer, seed=7).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _pair_batch(tokenizer):
    examples = []
    for i, (prompt, chosen, rejected) in enumerate(PAIRS):
        p, c, r, _ = encode_pair(tokenizer, prompt, chosen, rejected)
        examples.append({"id": f"p{i}", "prompt": p, "chosen": c, "rejected": r})
    return PairCollator(tokenizer.pad_token_id)(examples), examples


@torch.no_grad()
def _slow_logprob(model, prompt_ids: list[int], response_ids: list[int]) -> float:
    """log pi(response | prompt), one forward pass per response token on the unpadded prefix."""
    total = 0.0
    for t, token in enumerate(response_ids):
        logits = model(input_ids=torch.tensor([prompt_ids + response_ids[:t]])).logits[0, -1].double()
        total += torch.log_softmax(logits, -1)[token].item()
    return total


def test_dpo_loss_equals_a_token_by_token_computation(tokenizer, policy_dir, model_dirs):
    beta = 0.5
    module = DPOModule(
        ModelSpec(path=str(policy_dir)), beta=beta, reference=ModelSpec(path=str(model_dirs["reference"]))
    )
    module.configure_model()
    batch, examples = _pair_batch(tokenizer)
    loss, r_chosen, r_rejected, _ = module.dpo_terms(batch, "train")

    policy = AutoModelForCausalLM.from_pretrained(policy_dir).eval()
    reference = AutoModelForCausalLM.from_pretrained(model_dirs["reference"]).eval()
    terms, exp_chosen, exp_rejected = [], [], []
    for ex in examples:
        pc, pr = (_slow_logprob(policy, ex["prompt"], ex[s]) for s in ("chosen", "rejected"))
        rc, rr = (_slow_logprob(reference, ex["prompt"], ex[s]) for s in ("chosen", "rejected"))
        exp_chosen.append(beta * (pc - rc))
        exp_rejected.append(beta * (pr - rr))
        terms.append(-F.logsigmoid(torch.tensor(beta * ((pc - rc) - (pr - rr)), dtype=torch.float64)).item())
    assert abs(sum(terms) / len(terms) - 0.6931) > 0.01  # the two models differ: not the trivial log 2
    assert loss.item() == pytest.approx(sum(terms) / len(terms), abs=1e-5)
    torch.testing.assert_close(r_chosen.double(), torch.tensor(exp_chosen, dtype=torch.float64), atol=1e-5, rtol=0)
    torch.testing.assert_close(r_rejected.double(), torch.tensor(exp_rejected, dtype=torch.float64), atol=1e-5, rtol=0)
    loss.backward()
    assert all(p.grad is not None for p in module.model.parameters())
    assert all(p.grad is None for p in module.reference.parameters())


def test_lora_reference_is_the_base_model_and_export_merges_the_adapters(tokenizer, model_dirs, tmp_path):
    module = DPOModule(ModelSpec(path=str(model_dirs["reference"])), lora=LoraSpec(r=4, alpha=8))
    module.configure_model()
    assert module.reference is None  # no second copy: the reference is the base with adapters off
    trainable = [n for n, p in module.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    torch.manual_seed(0)
    with torch.no_grad():  # move the adapters away from their zero initialisation
        for name, p in module.model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.2)
    batch, examples = _pair_batch(tokenizer)
    base = AutoModelForCausalLM.from_pretrained(model_dirs["reference"]).eval()
    expected = [_slow_logprob(base, ex["prompt"], ex[s]) for s in ("chosen", "rejected") for ex in examples]
    torch.testing.assert_close(
        module.reference_logps(batch, "train").double(), torch.tensor(expected, dtype=torch.float64), atol=1e-5, rtol=0
    )
    loss, r_chosen, r_rejected, _ = module.dpo_terms(batch, "train")
    assert (r_chosen - r_rejected).abs().max() > 1e-3  # the adapted policy is not its reference

    ids = batch["input_ids"]
    with torch.no_grad():
        adapted = module.model(input_ids=ids, attention_mask=batch["attention_mask"]).logits
    save_merged(module.model, tmp_path / "merged")
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged").eval()
    assert type(merged).__name__ == "GPT2LMHeadModel"
    with torch.no_grad():
        torch.testing.assert_close(
            merged(input_ids=ids, attention_mask=batch["attention_mask"]).logits, adapted, atol=1e-4, rtol=1e-4
        )
        # the export undid its merge: the module still computes what it did
        torch.testing.assert_close(module.model(input_ids=ids, attention_mask=batch["attention_mask"]).logits, adapted)


def _fit(model_dirs, synthetic_dir, tmp_path, **kwargs) -> DPOModule:
    L.seed_everything(0)
    module = DPOModule(ModelSpec(path=str(model_dirs["reference"])), lr=1e-3, **kwargs)
    data = PreferenceDataModule(
        str(synthetic_dir / "pairs_train.jsonl"),
        str(model_dirs["reference"]),
        val_file=str(synthetic_dir / "pairs_val.jsonl"),
        batch_size=8,
    )
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=4,
        limit_val_batches=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(module, datamodule=data)
    return module


def test_precomputed_reference_trains_exactly_like_the_online_reference(model_dirs, synthetic_dir, tmp_path):
    online = _fit(model_dirs, synthetic_dir, tmp_path, reference_logprobs="online")
    pre = _fit(model_dirs, synthetic_dir, tmp_path, reference_logprobs="precompute")
    assert online.reference is not None and pre.reference is None  # precompute never holds a second copy
    assert len(pre.reference_cache["train"]) == 64 and len(pre.reference_cache["val"]) == 16
    for (name, a), b in zip(online.model.named_parameters(), pre.model.parameters()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5, msg=name)
    start = AutoModelForCausalLM.from_pretrained(model_dirs["reference"])
    assert any(not torch.equal(a, b) for a, b in zip(start.parameters(), pre.model.parameters()))  # it trained
    checkpoint: dict = {}
    pre.on_save_checkpoint(checkpoint)
    restored = DPOModule(ModelSpec(path=str(model_dirs["reference"])), reference_logprobs="precompute")
    restored.on_load_checkpoint(checkpoint)
    assert restored.reference_cache == pre.reference_cache  # a resumed run does not recompute them


def test_precompute_without_cached_pairs_fails_clearly(tokenizer, model_dirs):
    module = DPOModule(ModelSpec(path=str(model_dirs["reference"])), reference_logprobs="precompute")
    module.configure_model()
    batch, _ = _pair_batch(tokenizer)
    with pytest.raises(RuntimeError, match="reference_logprobs: online"):
        module.dpo_terms(batch, "val")
