"""ARGS as its reference implementation (deeplearning-wisc/args, ``ARGS.generate(method="greedy")``) does it.

The reference algorithm, step by step: run the LM on the whole sequence so far; take the top-k of
the **raw logits** of the last position; append each candidate to the sequence and run the reward
model, an ``AutoModelForSequenceClassification``, on each full candidate sequence, reading its
``.logits`` (the reward at the last token); score ``w * reward + logit`` (w: the paper's beta); keep the argmax.
The hand-written loop below does exactly that, one prompt at a time, without caches. The engine's
``args`` method (which adds the reward to log-probabilities, a per-row constant away from the
logits) must produce the same tokens, with a causal RM (cached scorer) and with an encoder RM
(general text path). The reference loop runs a fixed number of steps; the engine stops at EOS, so
tokens are compared up to the engine's end. Like the engine, the loop never picks padding or
unknown tokens (the reference code does not guard against them; tiny random models would).
"""

import pytest
import torch
from transformers import AutoModelForSequenceClassification, BertConfig

from pargs.decoding.build import RewardSpec, build_scorer
from pargs.decoding.engine import generate
from pargs.decoding.methods import preset
from pargs.decoding.noise import stable_seed
from pargs.models.encoding import encode_prompt
from pargs.models.loading import ModelSpec

PROMPTS = [
    "write a review of the hotel about the staff :",
    "write a short review of the zoo about the animals :",
    "write a detailed review of the car about the engine :",
]


@torch.no_grad()
def args_reference(lm, rm, tokenizer, prompt, beta, topk, max_new_token):
    tokens = torch.tensor([encode_prompt(tokenizer, prompt)])
    banned = [tokenizer.pad_token_id, tokenizer.unk_token_id]
    for _ in range(max_new_token):
        logits = lm(input_ids=tokens).logits[:, -1].clone()
        logits[:, banned] = float("-inf")
        prescreen_logits, prescreen_tokens = torch.topk(logits, dim=-1, k=topk)
        candidates = torch.cat([tokens.repeat(topk, 1), prescreen_tokens.view(topk, 1)], dim=1)
        rewards = rm(input_ids=candidates, attention_mask=torch.ones_like(candidates)).logits.flatten()
        new_scores = rewards * beta + prescreen_logits.flatten()
        best = int(torch.topk(new_scores, dim=-1, k=1).indices[0])
        tokens = candidates[best : best + 1]
    return tokens[0, -max_new_token:].tolist()


def _encoder_rm(tokenizer):
    torch.manual_seed(3)
    cfg = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=1,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = AutoModelForSequenceClassification.from_config(cfg).eval()
    with torch.no_grad():  # BERT pools through tanh(first token): a large head makes rewards matter
        model.classifier.weight.normal_(0, 200.0)
    return model


@pytest.mark.parametrize("family", ["causal", "encoder"])
def test_args_greedy_matches_the_reference_algorithm(lm, rm, tokenizer, family):
    reward_model = rm if family == "causal" else _encoder_rm(tokenizer)
    spec = RewardSpec(model=ModelSpec(path="in-memory"))  # the model itself is passed in directly
    scorer = build_scorer(spec, reward_model, tokenizer, tokenizer)
    assert type(scorer).__name__ == ("CachedCausalScorer" if family == "causal" else "TextScorer")
    method = preset("args", scorer="rm", beta=1.5)
    seeds = torch.tensor([stable_seed(i) for i in range(len(PROMPTS))])
    gen = generate(lm, tokenizer, PROMPTS, method, seeds, scorer=scorer, max_new_tokens=12)
    for prompt, ours in zip(PROMPTS, gen.token_ids):
        reference = args_reference(lm, reward_model, tokenizer, prompt, 1.5, 10, 12)
        assert ours == reference[: len(ours)]
    assert any(g != gen.token_ids[0] for g in gen.token_ids)
