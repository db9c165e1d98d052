"""A batch of left-padded sequences growing token by token through a causal model's KV cache.

Used for the policy (one token per step) and for the cached reward scorer (k candidate tokens per
step, appended as one chunk that each candidate sees alone, then the chosen one kept).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from transformers import DynamicCache

#: ``forward(input_ids, attention_mask, position_ids, cache) -> (outputs [B, T, ...], cache)``
Forward = Callable[[Tensor, Tensor, Tensor, object], tuple[Tensor, object]]


class CausalStream:
    """KV cache, attention mask and positions of a batch of growing sequences."""

    def __init__(self, forward: Forward, config) -> None:
        self._forward = forward
        self._config = config
        self.cache = None
        self.mask: Tensor | None = None  # [B, L] 0/1, left padding
        self.next_pos: Tensor | None = None  # [B] position id of the next token

    def prefill(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """Run the prompt through the model; returns the outputs at every position."""
        self.cache = DynamicCache(config=self._config)
        self.mask = attention_mask.to(torch.long)
        positions = (self.mask.cumsum(-1) - 1).clamp(min=0)
        out, self.cache = self._forward(input_ids, self.mask, positions, self.cache)
        self.next_pos = self.mask.sum(-1)
        return out

    def append(self, tokens: Tensor) -> Tensor:
        """Append one token per row ``[B]``; returns the outputs at that token ``[B, ...]``."""
        self.mask = torch.cat([self.mask, self.mask.new_ones(self.mask.shape[0], 1)], dim=1)
        out, self.cache = self._forward(tokens.unsqueeze(1), self.mask, self.next_pos.unsqueeze(1), self.cache)
        self.next_pos = self.next_pos + 1
        return out[:, 0]

    def try_candidates(self, candidates: Tensor) -> Tensor:
        """Run ``k`` alternative next tokens per row ``[B, k]`` in one forward pass.

        The chunk gets a 4D mask under which candidate j sees the prefix and itself only, and all
        candidates take the same position, so output j equals a forward of ``prefix + [v_j]``.
        Must be followed by :meth:`keep_candidate`. Returns the outputs ``[B, k, ...]``.
        """
        b, k = candidates.shape
        length = self.mask.shape[1]
        visible = torch.zeros(b, 1, k, length + k, dtype=torch.bool, device=candidates.device)
        visible[:, 0, :, :length] = self.mask.bool().unsqueeze(1)
        j = torch.arange(k, device=candidates.device)
        visible[:, 0, j, length + j] = True
        positions = self.next_pos.unsqueeze(1).expand(b, k)
        out, self.cache = self._forward(candidates, visible, positions, self.cache)
        return out

    def keep_candidate(self, chosen: Tensor, k: int) -> None:
        """Keep candidate ``chosen[b]`` of the last :meth:`try_candidates` as each row's next token."""
        length = self.mask.shape[1]
        rows = torch.arange(chosen.shape[0], device=chosen.device)
        for layer in self.cache.layers:
            for name in ("keys", "values"):
                t = getattr(layer, name)  # [B, heads, length + k, dim]
                t[:, :, length] = t[rows, :, length + chosen]
        if k > 1:
            self.cache.crop(-(k - 1))  # drop the other k - 1 slots (crop takes a negative count)
        self.mask = torch.cat([self.mask, self.mask.new_ones(self.mask.shape[0], 1)], dim=1)
        self.next_pos = self.next_pos + 1

    def keep_rows(self, rows: Tensor) -> None:
        """Drop every row not listed in ``rows`` (finished sequences leave the batch)."""
        self.cache.batch_select_indices(rows)
        self.mask = self.mask[rows]
        self.next_pos = self.next_pos[rows]

    def repeat_rows(self, times: int) -> None:
        """Repeat each row ``times`` times in place (row i becomes rows i*times ... i*times+times-1)."""
        self.cache.batch_repeat_interleave(times)
        self.mask = self.mask.repeat_interleave(times, dim=0)
        self.next_pos = self.next_pos.repeat_interleave(times, dim=0)
