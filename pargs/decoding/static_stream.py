"""A batch of growing sequences in fixed-size buffers: the KV cache of the static (compiled) decoding path.

:class:`StaticStream` does what :class:`~pargs.decoding.stream.CausalStream` does (append one token
per row, try k candidate tokens per row, keep one), but every step has the same shapes, so a step
can be captured once (CUDA graph, ``torch.compile``) and replayed:

- each layer's keys and values live in buffers ``[rows, heads, slots, dim]`` allocated once with room
  for the prompt, every new token and the k candidates of the last step, and written in place (separate
  tensors, not views of one: ``torch.compile`` writes a mutated view back with a copy of its whole base);
- all rows share a write column (``col``, a device tensor): the prompts are left-padded to one
  length, and every step appends one token to every row (a finished row keeps decoding, unread);
- which columns each row sees is a device tensor ``visible`` ``[rows, slots]`` updated in place, and
  every forward pass gets an additive 4D mask over all slots built from it, so the model's own mask
  code is skipped; columns not yet written hold finite stale values that the mask hides;
- candidate tokens go to the columns after the prefix (``col .. col + k - 1``), each seeing the
  prefix and itself, and the chosen one is then copied into column ``col`` of every layer.

The prompt runs through :class:`~pargs.decoding.stream.CausalStream` (the eager path's prefill, so the
first token matches it exactly) and its keys and values are copied into the buffers.
"""

from __future__ import annotations

import torch
from torch import Tensor
from transformers.cache_utils import Cache, CacheLayerMixin

from pargs.decoding.stream import CausalStream, Forward, SlottedLayer


class _StaticLayer(CacheLayerMixin):
    """One layer's fixed buffers: ``update`` writes the new states at the owner's ``write_at`` columns."""

    is_compileable = True
    is_sliding = False

    def __init__(self, owner: StaticCache, keys: Tensor, values: Tensor) -> None:
        super().__init__()
        self.owner = owner
        self.keys, self.values = keys, values
        self.is_initialized = True

    def lazy_initialization(self, key_states: Tensor, value_states: Tensor) -> None:  # allocated by the owner
        pass

    def update(self, key_states: Tensor, value_states: Tensor, *args, **kwargs) -> tuple[Tensor, Tensor]:
        self.keys.index_copy_(2, self.owner.write_at, key_states)
        self.values.index_copy_(2, self.owner.write_at, value_states)
        return self.keys, self.values

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.owner.slots, 0

    def get_seq_length(self) -> int:
        return self.owner.slots  # the attended length; positions and masks are always given explicitly

    def get_max_length(self) -> int:
        return self.owner.slots


class StaticCache(Cache):
    """A Hugging Face cache of fixed buffers ``[rows, heads, slots, dim]``, a key and a value buffer per layer."""

    def __init__(self, keys: list[Tensor], values: list[Tensor]) -> None:
        self.slots = keys[0].shape[2]
        self.write_at = torch.zeros(1, dtype=torch.long, device=keys[0].device)  # columns of the next update
        super().__init__(layers=[_StaticLayer(self, k, v) for k, v in zip(keys, values)])

    def buffers(self) -> list[Tensor]:
        """Every layer's key and value buffers."""
        return [t for layer in self.layers for t in (layer.keys, layer.values)]


class StaticStream:
    """KV cache, visibility and positions of a batch of growing sequences, in buffers of ``slots`` columns."""

    def __init__(self, forward: Forward, config, dtype: torch.dtype, slots: int) -> None:
        self._forward = forward
        self._config = config
        self._dtype = dtype  # the model's: masks are additive, in this dtype
        self.slots = slots
        self.cache: StaticCache | None = None
        self.visible: Tensor | None = None  # [B, slots] bool: the columns each row attends to
        self.next_pos: Tensor | None = None  # [B] position id of the next token
        self.col: Tensor | None = None  # [1] the column of the next token (the same for every row)
        self._columns: Tensor | None = None  # [slots] 0 .. slots - 1
        self._shapes: list | None = None  # rows, heads, key and value widths, dtype the buffers were made for

    def allocated_bytes(self) -> int:
        """Bytes held by the key and value buffers."""
        if self.cache is None:
            return 0
        return sum(t.numel() * t.element_size() for t in self.cache.buffers())

    def prefill(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """Run the prompt through the model (as the eager path does) and copy its keys and values into
        the buffers; returns the outputs at every position. Buffers of the same shape are reused."""
        eager = CausalStream(self._forward, self._config, self._dtype)
        out = eager.prefill(input_ids, attention_mask)
        layers = eager.cache.layers
        if not all(isinstance(layer, SlottedLayer) for layer in layers):
            raise ValueError("the static path needs full-attention cache layers only")
        rows, prompt = input_ids.shape
        if prompt >= self.slots:
            raise ValueError(f"a prompt of {prompt} tokens leaves no room in {self.slots} slots")
        shapes = [(rows, *layer.keys.shape[1::2], layer.values.shape[3], layer.keys.dtype) for layer in layers]
        if self.cache is None or self._shapes != shapes:
            device = input_ids.device

            def buffer(like: Tensor) -> Tensor:  # zeros: masked slots must hold finite values
                return torch.zeros(rows, like.shape[1], self.slots, like.shape[3], dtype=like.dtype, device=device)

            self.cache = StaticCache(
                [buffer(layer.keys) for layer in layers], [buffer(layer.values) for layer in layers]
            )
            self._shapes = shapes
            self.visible = torch.zeros(rows, self.slots, dtype=torch.bool, device=device)
            self.next_pos = torch.zeros(rows, dtype=torch.long, device=device)
            self.col = torch.zeros(1, dtype=torch.long, device=device)
            self._columns = torch.arange(self.slots, device=device)
        for layer, static in zip(layers, self.cache.layers):
            static.keys[:, :, :prompt] = layer.keys
            static.values[:, :, :prompt] = layer.values
        self.visible.zero_()
        self.visible[:, :prompt] = attention_mask.bool()
        self.next_pos.copy_(attention_mask.to(torch.long).sum(-1))
        self.col.fill_(prompt)
        return out

    def _additive(self, visible: Tensor) -> Tensor:
        """``[B, q, slots]`` visibility as the additive mask ``[B, 1, q, slots]`` (0 or the dtype's minimum)."""
        mask = torch.zeros(visible.shape, dtype=self._dtype, device=visible.device)
        return mask.masked_fill_(~visible, torch.finfo(self._dtype).min).unsqueeze(1)

    def append(self, tokens: Tensor) -> Tensor:
        """Append one token per row ``[B]`` at column ``col``; returns the outputs at that token ``[B, ...]``."""
        self.visible.index_fill_(1, self.col, True)
        self.cache.write_at = self.col
        out, _ = self._forward(
            tokens.unsqueeze(1), self._additive(self.visible.unsqueeze(1)), self.next_pos.unsqueeze(1), self.cache
        )
        self._advance()
        return out[:, 0]

    def try_candidates(self, candidates: Tensor) -> Tensor:
        """Run ``k`` alternative next tokens per row ``[B, k]`` in one forward pass (see
        :meth:`CausalStream.try_candidates`): candidate j goes to column ``col + j`` and sees the prefix and
        itself. Must be followed by :meth:`keep_candidate`. Returns the outputs ``[B, k, ...]``."""
        b, k = candidates.shape
        at = self.col + self._columns[:k]
        self.cache.write_at = at
        own = self._columns.unsqueeze(0) == at.unsqueeze(1)  # [k, slots]: candidate j's own column
        visible = self.visible.unsqueeze(1) | own.unsqueeze(0)
        out, _ = self._forward(candidates, self._additive(visible), self.next_pos.unsqueeze(1).expand(b, k), self.cache)
        return out

    def keep_candidate(self, chosen: Tensor, k: int) -> None:
        """Keep candidate ``chosen[b]`` of the last :meth:`try_candidates` as each row's next token: its keys
        and values move to column ``col`` in every layer (the other candidates' columns are overwritten later)."""
        rows = torch.arange(chosen.shape[0], device=chosen.device)
        source = self.col + chosen  # [B]
        for buffer in self.cache.buffers():
            buffer.index_copy_(2, self.col, buffer[rows, :, source].unsqueeze(2))  # [B, heads, 1, dim]
        self.visible.index_fill_(1, self.col, True)
        self._advance()

    def drop_candidates(self, k: int) -> None:
        """Forget the candidates of the last :meth:`try_candidates` (their columns are overwritten later)."""

    def _advance(self) -> None:
        self.next_pos.add_(1)
        self.col.add_(1)
