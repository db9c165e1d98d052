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

    For inference only: the buffer is written in place, which autograd cannot follow.
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

    def reorder_cache(self, beam_idx: Tensor) -> None:
        if self.is_initialized:
            self.batch_select_indices(beam_idx.to(self._k.device))

    def reset(self) -> None:
        self.length, self._k, self._v, self.keys, self.values = 0, None, None, None, None
        self.is_initialized = False

    def offload(self):
        raise NotImplementedError("SlottedLayer does not offload; use Hugging Face's DynamicLayer for that")

    prefetch = offload

    def batch_repeat_interleave(self, repeats: int) -> None:
        if self.is_initialized:
            self._k, self._v = self._k.repeat_interleave(repeats, 0), self._v.repeat_interleave(repeats, 0)
            self._views()

    def allocated_bytes(self) -> int:
        """Bytes held by the buffers (spare room included)."""
        if not self.is_initialized:
            return 0
        return sum(t.numel() * t.element_size() for t in (self._k, self._v))


def _full_attention(layer) -> bool:
    return type(layer) is DynamicLayer  # not isinstance: sliding-window and chunked layers subclass it


def new_cache(config) -> DynamicCache:
    """A cache for ``config``'s model whose plain full-attention layers are :class:`SlottedLayer`.

    Other layer kinds (sliding windows, linear attention) keep their Hugging Face class.
    """
    cache = DynamicCache(config=config)
    cache.layers = [SlottedLayer() if _full_attention(layer) else layer for layer in cache.layers]
    return cache


def why_no_candidate_chunks(config) -> str | None:
    """Why :meth:`CausalStream.try_candidates` cannot serve ``config``'s model, or None when it can.

    The candidate chunk needs attention that applies a custom additive 4D mask (eager or SDPA; flash
    attention ignores it) and layers that attend to the whole prefix (the mask knows no window).
    """
    text = config.get_text_config(decoder=True)
    implementation = getattr(text, "_attn_implementation", None) or "eager"
    if implementation not in ("sdpa", "eager"):
        return f"its attention implementation {implementation!r} ignores custom 4D masks (use 'sdpa' or 'eager')"
    if any("local" in str(kind) for kind in getattr(text, "attention_layers", None) or ()):
        return "it has local (windowed) attention layers"
    try:
        layers = DynamicCache(config=config).layers
    except (KeyError, ValueError, TypeError) as err:
        return f"its cache layout is unknown to this check ({type(err).__name__}: {err})"
    if not all(_full_attention(layer) for layer in layers):
        return "it has sliding-window (or other not full-attention) layers"
    return None


def _first_of_equal_rows(rows: Tensor) -> tuple[Tensor | None, Tensor | None]:
    """``(first, inverse)``: the index of the first of each group of equal rows of ``rows`` ``[B, L]`` and, per
    row, its group, so ``rows[first][inverse] == rows``; ``(None, None)`` when no two rows are equal."""
    unique, inverse = torch.unique(rows, dim=0, return_inverse=True)
    if unique.shape[0] == rows.shape[0]:
        return None, None
    order = torch.arange(rows.shape[0], device=rows.device)
    first = torch.full((unique.shape[0],), rows.shape[0], dtype=torch.long, device=rows.device)
    first.scatter_reduce_(0, inverse, order, reduce="amin")
    return first, inverse


class CausalStream:
    """KV cache, attention mask and positions of a batch of growing sequences."""

    def __init__(self, forward: Forward, config, dtype: torch.dtype = torch.float32) -> None:
        self._forward = forward
        self._config = config
        self._dtype = dtype  # the model's: candidate masks are additive, in this dtype
        self.cache = None
        self.mask: Tensor | None = None  # [B, L] 0/1, left padding
        self.next_pos: Tensor | None = None  # [B] position id of the next token

    def prefill(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """Run the prompt through the model; returns the outputs at every position.

        Rows that repeat an earlier row (the same ids and mask: the samples of one prompt, the Monte Carlo
        completions of one prefix) run once, and their outputs and cache rows are copied from it.
        """
        self.cache = new_cache(self._config)
        self.mask = attention_mask.to(torch.long)
        positions = (self.mask.cumsum(-1) - 1).clamp(min=0)
        self.next_pos = self.mask.sum(-1)
        first, inverse = _first_of_equal_rows(torch.cat([input_ids, self.mask], dim=1))
        if first is None:
            out, self.cache = self._forward(input_ids, self.mask, positions, self.cache)
            return out
        out, self.cache = self._forward(input_ids[first], self.mask[first], positions[first], self.cache)
        self.cache.batch_select_indices(inverse)
        return out[inverse]

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

        The chunk gets an additive 4D mask (0 where visible, the dtype's minimum elsewhere; eager
        attention adds a mask, so a boolean one would mask nothing) under which candidate j sees the
        prefix and itself only, and all candidates take the same position, so output j equals a
        forward of ``prefix + [v_j]`` for models that :func:`why_no_candidate_chunks` accepts. Must be
        followed by :meth:`keep_candidate`. Returns the outputs ``[B, k, ...]``.
        """
        b, k = candidates.shape
        eye = torch.eye(k, dtype=torch.bool, device=candidates.device).expand(b, k, k)
        visible = torch.cat([self.mask.bool().unsqueeze(1).expand(b, k, -1), eye], dim=2).unsqueeze(1)
        mask = torch.zeros(visible.shape, dtype=self._dtype, device=visible.device)
        mask.masked_fill_(~visible, torch.finfo(self._dtype).min)
        positions = self.next_pos.unsqueeze(1).expand(b, k)
        out, self.cache = self._forward(candidates, mask, positions, self.cache)
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

    def drop_candidates(self, k: int) -> None:
        """Forget all ``k`` candidates of the last :meth:`try_candidates` (instead of :meth:`keep_candidate`)."""
        self.cache.crop(-k)

    def keep_rows(self, rows: Tensor) -> None:
        """Drop every row not listed in ``rows`` (finished sequences leave the batch)."""
        self.cache.batch_select_indices(rows)
        self.mask = self.mask[rows]
        self.next_pos = self.next_pos[rows]
