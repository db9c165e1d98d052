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
from pargs.models.reward_model import prefix_rewards
from pargs.prefixes import PadRule, prefix_fraction_lengths

FRACTIONS = (0.25, 0.5, 0.75, 1.0)


def agreement(r_chosen: Tensor, r_rejected: Tensor) -> Tensor:
    """Per pair: 1 if the chosen response scores higher, 0.5 on a tie, else 0."""
    return (r_chosen > r_rejected).float() + 0.5 * (r_chosen == r_rejected).float()


def pair_prefix_scores(
    model: PreTrainedModel,
    input_ids: Tensor,
    attention_mask: Tensor,
    prompt_len_w: Tensor,
    len_w: Tensor,
    prompt_len_l: Tensor,
    len_l: Tensor,
    lengths: Sequence[Tensor],
) -> list[tuple[Tensor, Tensor]]:
    """``(r_chosen, r_rejected)`` of each pair cut to each prefix length in ``lengths`` (``[B]`` each).

    The rows are the B chosen sequences, then the B rejected ones (right-padded). A response shorter
    than a length is scored whole. A causal RM needs one pass, an encoder RM one per length.
    """
    cuts = [
        torch.cat([prompt_len_w + torch.minimum(i, len_w) - 1, prompt_len_l + torch.minimum(i, len_l) - 1])
        for i in lengths
    ]
    b = len_w.shape[0]
    return [(s[:b], s[b:]) for s in prefix_rewards(model, input_ids, attention_mask, cuts)]


def encode_pairs(
    tokenizer: PreTrainedTokenizerBase,
    pairs: Sequence[dict],
    max_length: int | None = None,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """``(ids, mask, prompt_len, len_w, len_l)`` of ``pairs`` as :func:`pair_prefix_scores` reads them.

    ``ids`` / ``mask`` hold the B chosen sequences, then the B rejected ones, right-padded;
    the lengths are ``[B]`` (each response counts its EOS).
    """
    enc = [encode_pair(tokenizer, r["prompt"], r["chosen"], r["rejected"], max_length) for r in pairs]
    ids, mask = pad_batch([p + c for p, c, _, _ in enc] + [p + r for p, _, r, _ in enc], tokenizer.pad_token_id)
    lengths = [torch.tensor([len(x[k]) for x in enc]) for k in range(3)]
    return ids, mask, *lengths


@torch.no_grad()
def prefix_agreement(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    pairs: Sequence[dict],
    fractions: Sequence[float] = FRACTIONS,
    pad_rule: PadRule = "longest",
    batch_size: int = 32,
    max_length: int | None = None,
) -> dict[float, float]:
    """Share of preference ``pairs`` (records with prompt/chosen/rejected) an RM (causal or encoder) gets
    right at each fraction of the response: the prefix has ``ceil(f * L)`` tokens, L per ``pad_rule``."""
    device = next(model.parameters()).device
    totals = {f: 0.0 for f in fractions}
    for start in range(0, len(pairs), batch_size):
        ids, mask, pl, lw, ll = encode_pairs(tokenizer, pairs[start : start + batch_size], max_length)
        pl, lw, ll = pl.to(device), lw.to(device), ll.to(device)
        lengths = [prefix_fraction_lengths(lw, ll, f, pad_rule) for f in fractions]
        scores = pair_prefix_scores(model, ids.to(device), mask.to(device), pl, lw, pl, ll, lengths)
        for f, (r_w, r_l) in zip(fractions, scores):
            totals[f] += float(agreement(r_w, r_l).sum())
    return {f: totals[f] / len(pairs) for f in fractions}


def agreement_table(results: dict[str, dict[float, float]], n_pairs: int) -> str:
    """Markdown: one row per reward model, one column per fraction of the response (the Table 12 view)."""
    fractions = sorted({f for r in results.values() for f in r})
    lines = [
        "| reward model | " + " | ".join(f"{round(f * 100)} %" for f in fractions) + " |",
        "|---|" + "---:|" * len(fractions),
    ]
    for name, res in results.items():
        lines.append(f"| {name} | " + " | ".join(f"{res[f]:.3f}" for f in fractions) + " |")
    lines += [
        "",
        f"Share of {n_pairs} held-out pairs whose chosen response gets the higher reward when both "
        "responses are cut to that fraction of their length (ties count one half).",
    ]
    return "\n".join(lines)
