"""Prefixes of preference pairs: which token ends prefix i, and how unequal lengths are padded.

A pair (prompt x, chosen y_w, rejected y_l) contributes one Bradley-Terry term per prefix length
i = 1 .. L. What r(x, y[:i]) means once i passes the end of the *shorter* response is a modelling
choice, fixed here by :data:`PadRule`:

- ``"longest"`` (the paper's rule): the shorter response is padded to the longer one, so
  L = max(|y_w|, |y_l|); past its end the shorter response is complete and its reward stays the
  reward of the whole response (its last real token's reward is carried forward).
- ``"shortest"``: no padding; only i = 1 .. min(|y_w|, |y_l|) are compared.

Positions are indices into token sequences laid out as ``prompt + response + right padding``.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from pargs.errors import ConfigError

PadRule = Literal["longest", "shortest"]
PAD_RULES: tuple[str, ...] = ("longest", "shortest")


def check_pad_rule(rule: str) -> None:
    if rule not in PAD_RULES:
        raise ConfigError(f"pad_rule must be one of {PAD_RULES}, got {rule!r}")


def pair_prefix_positions(
    prompt_len_w: Tensor, len_w: Tensor, prompt_len_l: Tensor, len_l: Tensor, rule: PadRule = "longest"
) -> tuple[Tensor, Tensor, Tensor]:
    """Token positions that end each prefix of each pair.

    Args:
        prompt_len_w, prompt_len_l: ``[B]`` prompt lengths of the chosen / rejected sequences.
        len_w, len_l: ``[B]`` response lengths (>= 1).
        rule: how unequal lengths are handled (module docstring).

    Returns:
        ``pos_w, pos_l``: ``[B, L]`` positions (L = longest number of terms in the batch) of the last
        token of prefix i in each sequence, and ``mask``: ``[B, L]`` which terms exist.
    """
    check_pad_rule(rule)
    if (len_w < 1).any() or (len_l < 1).any():
        raise ConfigError("every response needs at least one token")
    n_terms = torch.maximum(len_w, len_l) if rule == "longest" else torch.minimum(len_w, len_l)
    steps = torch.arange(1, int(n_terms.max()) + 1, device=len_w.device).unsqueeze(0)  # [1, L]
    mask = steps <= n_terms.unsqueeze(1)
    pos_w = prompt_len_w.unsqueeze(1) + torch.minimum(steps, len_w.unsqueeze(1)) - 1
    pos_l = prompt_len_l.unsqueeze(1) + torch.minimum(steps, len_l.unsqueeze(1)) - 1
    return pos_w, pos_l, mask


def final_positions(prompt_len: Tensor, length: Tensor) -> Tensor:
    """``[B]`` position of the last response token (where the full-sequence reward is read)."""
    return prompt_len + length - 1


def response_mask(prompt_len: Tensor, response_len: Tensor, width: int) -> Tensor:
    """``[B, width]`` bool, True at the positions of each row's response tokens.

    Position t holds a response token when ``prompt_len <= t < prompt_len + response_len``.
    """
    t = torch.arange(width, device=prompt_len.device).unsqueeze(0)
    return (t >= prompt_len.unsqueeze(1)) & (t < (prompt_len + response_len).unsqueeze(1))


def prefix_fraction_lengths(len_w: Tensor, len_l: Tensor, fraction: float, rule: PadRule = "longest") -> Tensor:
    """``[B]`` prefix length i at ``fraction`` of a pair's comparable length (at least 1 token).

    Used for accuracy at 25/50/75/100 % of the response (the paper's Table 12 view).
    """
    check_pad_rule(rule)
    if not 0.0 < fraction <= 1.0:
        raise ConfigError(f"fraction must be in (0, 1], got {fraction}")
    n_terms = torch.maximum(len_w, len_l) if rule == "longest" else torch.minimum(len_w, len_l)
    return torch.clamp(torch.ceil(n_terms.to(torch.float64) * fraction).to(torch.long), min=1)


def sample_prefix_rows(
    len_w: Tensor,
    len_l: Tensor,
    ratio: float,
    generator: torch.Generator,
    rule: PadRule = "longest",
    weighting: str = "term",
) -> tuple[Tensor, Tensor]:
    """Draw materialised prefix rows for models that cannot score all prefixes in one pass.

    ``round(ratio * n_pairs)`` rows are drawn with replacement; a ratio of 1.0 gives as many prefix
    rows as the full-sequence dataset has pairs (the paper's 1x setting). The prefix length is uniform
    over a pair's terms (1 .. its number of terms under ``rule``) either way; ``weighting`` says how
    pairs are drawn, matching the dense loss's option of that name so that the expected loss is the
    same: ``"term"`` draws every (pair, prefix length) term with the same probability (a pair in
    proportion to its number of terms), ``"pair"`` draws every pair with the same probability.

    Returns ``(pair_index, prefix_len)``, each ``[n_rows]``.
    """
    check_pad_rule(rule)
    if ratio <= 0:
        raise ConfigError(f"prefix sampling ratio must be > 0, got {ratio}")
    n_rows = max(1, round(ratio * len_w.numel()))
    n_terms = torch.maximum(len_w, len_l) if rule == "longest" else torch.minimum(len_w, len_l)
    if weighting == "term":
        ends = n_terms.cumsum(0)
        term = torch.randint(int(ends[-1]), (n_rows,), generator=generator)
        pair_index = torch.searchsorted(ends, term, right=True)
        return pair_index, term - (ends[pair_index] - n_terms[pair_index]) + 1
    if weighting != "pair":
        raise ConfigError(f"prefix weighting must be 'term' or 'pair', got {weighting!r}")
    pair_index = torch.randint(len_w.numel(), (n_rows,), generator=generator)
    u = torch.rand(n_rows, generator=generator, dtype=torch.float64)
    return pair_index, (u * n_terms[pair_index]).floor().to(torch.long) + 1
