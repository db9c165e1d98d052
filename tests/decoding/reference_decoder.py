"""A deliberately slow guided decoder: one prompt at a time, no KV cache, every candidate scored from scratch.

It is the definition the engine is tested against: at each step run the policy on the whole
sequence, take the top-k tokens of log pi_ref, score ``prompt + response + [v]`` with the reward
model as a fresh sequence, and pick the argmax (or the Gumbel-max draw, with the noise the engine's
specification fixes) of ``log pi_ref + beta * r``.
"""

from __future__ import annotations

import torch

from pargs.decoding.noise import gumbel_noise
from pargs.models.encoding import encode_prompt
from pargs.models.reward_model import sequence_rewards


@torch.no_grad()
def reference_guided_decode(
    policy,
    rm,
    tokenizer,
    prompt: str,
    seed: int,
    k: int,
    beta: float,
    greedy: bool,
    max_new_tokens: int,
    temperature: float = 1.0,
) -> list[int]:
    ids = encode_prompt(tokenizer, prompt)
    out: list[int] = []
    banned = [tokenizer.pad_token_id, tokenizer.unk_token_id]
    for step in range(max_new_tokens):
        logits = policy(input_ids=torch.tensor([ids + out])).logits[0, -1].float()
        logits[banned] = float("-inf")
        logp = torch.log_softmax(logits, -1)
        lp, cand = logp.topk(k)
        seqs = torch.tensor([ids + out + [v] for v in cand.tolist()])
        r = sequence_rewards(rm, seqs, torch.ones_like(seqs)) if rm is not None else torch.zeros(k)
        scores = lp + beta * r
        if greedy:
            j = int(scores.argmax())
        else:
            noise = gumbel_noise(torch.tensor([seed]), step, cand.unsqueeze(0))[0]
            j = int((scores / temperature + noise).argmax())
        token = int(cand[j])
        out.append(token)
        if token == tokenizer.eos_token_id:
            break
    return out
