"""A batch of left-padded sequences growing token by token through a causal model's KV cache.

Used for the policy (one token per step) and for the cached reward scorer (k candidate tokens per
step, appended as one chunk that each candidate sees alone, then the chosen one kept).

Full-attention cache layers write into a buffer with spare room (:class:`SlottedLayer`) instead of
concatenating, which would copy the whole cache at every step.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

#: ``forward(input_ids, attention_mask, position_ids, cache) -> (outputs [B, T, ...], cache)``
Forward = Callable[[Tensor, Tensor, Tensor, object], tuple[Tensor, object]]


class SlottedLayer(DynamicLayer):
    """A full-attention cache layer whose keys and values live in a buffer with room to grow.

    ``keys`` / ``values`` are views of the first ``length`` slots. Appending writes into the next
    slots, and the buffer is reallocated only when full, with 64 spare slots or an eighth of the
    length, whichever is more. So a step costs O(new tokens) instead of a copy of the whole cache,
    the spare room stays small, and cropping only moves ``length`` back.
    """

    def __init__(self) -> None:
        super().__init__()
        self.length = 0
        self._k: Tensor | None = None
        self._v: Tensor | None = None

    def lazy_initialization(self, key_states: Tensor, value_states: Tensor) -> None:
        self.device = key_states.device
        self._k = key_states.new_empty(*key_states.shape[:2], 0, key_states.shape[3])
        self._v = value_states.new_empty(*value_states.shape[:2], 0, value_states.shape[3])
        self.is_initialized = True

    def _views(self) -> None:
        self.keys, self.values = self._k[:, :, : self.length], self._v[:, :, : self.length]

    def update(self, key_states: Tensor, value_states: Tensor, *args, **kwargs) -> tuple[Tensor, Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        end = self.length + key_states.shape[-2]
        if end > self._k.shape[-2]:
            self._k, self._v = (self._regrown(t, end + max(64, end // 8)) for t in (self._k, self._v))
        self._k[:, :, self.length : end] = key_states
        self._v[:, :, self.length : end] = value_states
        self.length = end
        self._views()
        return self.keys, self.values

    def _regrown(self, t: Tensor, slots: int) -> Tensor:
        grown = t.new_empty(*t.shape[:2], slots, t.shape[3])
        grown[:, :, : self.length] = t[:, :, : self.length]
        return grown

    def get_seq_length(self) -> int:
        return self.length

    def crop(self, tokens_to_remove: int) -> None:
        if tokens_to_remove > 0:
            raise ValueError(f"crop takes a negative count of tokens to remove, got {tokens_to_remove}")
        if self.is_initialized and tokens_to_remove:
            self.length = max(0, self.length + tokens_to_remove)
            self._views()

    def batch_select_indices(self, indices: Tensor) -> None:
        if self.is_initialized:
            self._k, self._v = self._k[indices], self._v[indices]
            self._views()

    def batch_repeat_interleave(self, repeats: int) -> None:
        if self.is_initialized:
            self._k, self._v = self._k.repeat_interleave(repeats, 0), self._v.repeat_interleave(repeats, 0)
            self._views()

    def allocated_bytes(self) -> int:
        """Bytes held by the buffers (spare room included)."""
        if not self.is_initialized:
            return 0
        return sum(t.numel() * t.element_size() for t in (self._k, self._v))


def new_cache(config) -> DynamicCache:
    """A cache for ``config``'s model whose plain full-attention layers are :class:`SlottedLayer`.

    Other layer kinds (sliding windows, linear attention) keep their Hugging Face class.
    """
    cache = DynamicCache(config=config)
    cache.layers = [SlottedLayer() if type(layer) is DynamicLayer else layer for layer in cache.layers]
    return cache


def full_attention_only(config) -> bool:
    """Whether every layer of ``config``'s model attends to the whole prefix (no sliding window, no linear
    attention), which :meth:`CausalStream.try_candidates` assumes."""
    return all(type(layer) is DynamicLayer for layer in DynamicCache(config=config).layers)


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
        self.cache = new_cache(self._config)
        self.mask = attention_mask.to(torch.long)
        positions = (self.mask.cumsum(-1) - 1).clamp(min=0)
        out, self.cache = self._forward(input_ids, self.mask, positions, self.cache)
        self.next_pos = self.mask.sum(-1)
        return out

    def _grow_mask(self) -> None:
        self.mask = torch.cat([self.mask, self.mask.new_ones(self.mask.shape[0], 1)], dim=1)

    def append(self, tokens: Tensor) -> Tensor:
        """Append one token per row ``[B]``; returns the outputs at that token ``[B, ...]``."""
        self._grow_mask()
        out, self.cache = self._forward(tokens.unsqueeze(1), self.mask, self.next_pos.unsqueeze(1), self.cache)
        self.next_pos = self.next_pos + 1
        return out[:, 0]

    def try_candidates(self, candidates: Tensor) -> Tensor:
        """Run ``k`` alternative next tokens per row ``[B, k]`` in one forward pass.

        The chunk gets a 4D mask under which candidate j sees the prefix and itself only, and all
        candidates take the same position, so output j equals a forward of ``prefix + [v_j]`` for
        models with :func:`full_attention_only` (the mask knows no sliding window). Must be followed
        by :meth:`keep_candidate`. Returns the outputs ``[B, k, ...]``.
        """
        b, k = candidates.shape
        eye = torch.eye(k, dtype=torch.bool, device=candidates.device).expand(b, k, k)
        visible = torch.cat([self.mask.bool().unsqueeze(1).expand(b, k, -1), eye], dim=2).unsqueeze(1)
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
        self._grow_mask()
        self.next_pos = self.next_pos + 1

    def keep_rows(self, rows: Tensor) -> None:
        """Drop every row not listed in ``rows`` (finished sequences leave the batch)."""
        self.cache.batch_select_indices(rows)
        self.mask = self.mask[rows]
        self.next_pos = self.next_pos[rows]
