"""How often a reward model prefers the chosen response at 25/50/75/100 % of its length (Table 12).

A full-sequence RM is only trained to rank complete responses; this diagnostic (the empirical side of
the paper's Theorem 1) shows how well its prefix scores agree with the final preference.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from pargs.models.encoding import encode_pair, pad_batch
from pargs.models.reward_model import token_rewards
from pargs.prefixes import PadRule, prefix_fraction_lengths

FRACTIONS = (0.25, 0.5, 0.75, 1.0)


def agreement_from_token_rewards(
    rewards_w: Tensor, rewards_l: Tensor, prompt_len_w: Tensor, len_w: Tensor, prompt_len_l: Tensor, len_l: Tensor,
    fractions: Sequence[float] = FRACTIONS, pad_rule: PadRule = "longest",
) -> dict[float, Tensor]:
    """``{fraction: [B] 1/0.5/0 agreement}`` from per-token rewards ``[B, T]`` of the two sequences.

    The prefix at fraction f has ``ceil(f * L)`` tokens (L per ``pad_rule``); a response shorter than
    that is compared whole. Ties count one half.
    """
    out = {}
    for f in fractions:
        i = prefix_fraction_lengths(len_w, len_l, f, pad_rule)
        r_w = rewards_w.gather(1, (prompt_len_w + torch.minimum(i, len_w) - 1).unsqueeze(1)).squeeze(1)
        r_l = rewards_l.gather(1, (prompt_len_l + torch.minimum(i, len_l) - 1).unsqueeze(1)).squeeze(1)
        out[f] = (r_w > r_l).float() + 0.5 * (r_w == r_l).float()
    return out


@torch.no_grad()
def prefix_agreement(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, pairs: Sequence[dict],
    fractions: Sequence[float] = FRACTIONS, pad_rule: PadRule = "longest", batch_size: int = 32,
    max_length: int | None = None,
) -> dict[float, float]:
    """Share of preference ``pairs`` (records with prompt/chosen/rejected) a causal RM gets right per fraction."""
    device = next(model.parameters()).device
    totals = {f: 0.0 for f in fractions}
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start:start + batch_size]
        enc = [encode_pair(tokenizer, r["prompt"], r["chosen"], r["rejected"], max_length) for r in chunk]
        seqs = [p + c for p, c, _, _ in enc] + [p + r for p, _, r, _ in enc]
        ids, mask = pad_batch(seqs, tokenizer.pad_token_id)
        rewards, _ = token_rewards(model, ids.to(device), mask.to(device))
        b = len(chunk)
        pl = torch.tensor([len(p) for p, *_ in enc], device=device)
        lw = torch.tensor([len(c) for _, c, _, _ in enc], device=device)
        ll = torch.tensor([len(r) for _, _, r, _ in enc], device=device)
        agree = agreement_from_token_rewards(rewards[:b], rewards[b:], pl, lw, pl, ll, fractions, pad_rule)
        for f in fractions:
            totals[f] += float(agree[f].sum())
    return {f: totals[f] / len(pairs) for f in fractions}


def agreement_table(results: dict[str, dict[float, float]], n_pairs: int) -> str:
    """Markdown: one row per reward model, one column per fraction of the response (the Table 12 view)."""
    fractions = sorted({f for r in results.values() for f in r})
    lines = ["| reward model | " + " | ".join(f"{round(f * 100)} %" for f in fractions) + " |",
             "|---|" + "---:|" * len(fractions)]
    for name, res in results.items():
        lines.append(f"| {name} | " + " | ".join(f"{res[f]:.3f}" for f in fractions) + " |")
    lines += ["", f"Share of {n_pairs} held-out pairs whose chosen response gets the higher reward when both "
              "responses are cut to that fraction of their length (ties count one half)."]
    return "\n".join(lines)
