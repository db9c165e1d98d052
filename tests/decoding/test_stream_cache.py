"""The slotted cache layer holds exactly what Hugging Face's concatenating DynamicLayer holds."""

import torch
from transformers import Qwen2Config
from transformers.cache_utils import DynamicLayer, DynamicSlidingWindowLayer

from pargs.decoding.engine import lm_forward
from pargs.decoding.stream import CausalStream, SlottedLayer, new_cache
from pargs.models.encoding import pad_batch


def _states(g, batch, length):
    return torch.randn(batch, 2, length, 4, generator=g), torch.randn(batch, 2, length, 4, generator=g)


def test_slotted_layer_matches_dynamic_layer_through_growth_crop_and_row_changes():
    g = torch.Generator().manual_seed(0)
    ours, reference = SlottedLayer(), DynamicLayer()
    # a prompt, then chunks that outgrow the buffer several times, with crops and row changes between
    script = [
        ("add", 5),
        ("add", 1),
        ("add", 70),
        ("crop", -3),
        ("add", 40),
        ("select", [2, 0]),
        ("add", 1),
        ("repeat", 2),
        ("add", 130),
        ("crop", -129),
        ("reorder", [3, 0, 2, 1]),
        ("add", 3),
    ]
    batch, longest = 3, 0
    for op, arg in script:
        if op == "add":
            k, v = _states(g, batch, arg)
            got, expected = ours.update(k, v), reference.update(k, v)
            for a, b in zip(got, expected):
                torch.testing.assert_close(a, b, rtol=0, atol=0)
        elif op == "crop":
            ours.crop(arg), reference.crop(arg)
        elif op == "select":
            rows = torch.tensor(arg)
            ours.batch_select_indices(rows), reference.batch_select_indices(rows)
            batch = len(arg)
        elif op == "reorder":
            ours.reorder_cache(torch.tensor(arg)), reference.reorder_cache(torch.tensor(arg))
        else:
            ours.batch_repeat_interleave(arg), reference.batch_repeat_interleave(arg)
            batch *= arg
        assert ours.get_seq_length() == reference.get_seq_length()
        torch.testing.assert_close(ours.keys, reference.keys, rtol=0, atol=0)
        torch.testing.assert_close(ours.values, reference.values, rtol=0, atol=0)
        longest = max(longest, ours.length)
    # spare room is bounded: at most an eighth of the longest length, or 64 slots (keys and values, float32)
    assert ours.allocated_bytes() <= 2 * batch * 2 * (longest + max(64, longest / 8)) * 4 * 4
    ours.reset()
    assert ours.get_seq_length() == 0 and ours.allocated_bytes() == 0
    k, v = _states(g, 2, 3)
    torch.testing.assert_close(ours.update(k, v), (k, v), rtol=0, atol=0)  # a reset layer starts afresh


def test_writing_through_the_views_changes_the_cache():
    layer = SlottedLayer()
    k, v = torch.zeros(1, 1, 3, 2), torch.zeros(1, 1, 3, 2)
    layer.update(k, v)
    layer.keys[:, :, 1] = 7.0  # how the cached scorer moves the chosen candidate into place
    layer.update(torch.ones(1, 1, 1, 2), torch.ones(1, 1, 1, 2))
    assert layer.keys[0, 0, :, 0].tolist() == [0.0, 7.0, 0.0, 1.0]


def test_new_cache_uses_slotted_layers_for_full_attention(lm):
    cache = new_cache(lm.config)
    assert cache.layers and all(type(layer) is SlottedLayer for layer in cache.layers)


def test_new_cache_keeps_windowed_layers_as_they_are():
    """Only plain full-attention layers are slotted; a sliding-window layer keeps its own eviction."""
    config = Qwen2Config(
        vocab_size=50,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        use_sliding_window=True,
        sliding_window=4,
        max_window_layers=1,
    )
    assert [type(layer) for layer in new_cache(config).layers] == [SlottedLayer, DynamicSlidingWindowLayer]


def _last_logits_alone(lm, ids: list[int]) -> torch.Tensor:
    """The next-token logits of one sequence, from a forward pass over it alone, without a cache."""
    with torch.no_grad():
        return lm(input_ids=torch.tensor([ids])).logits[0, -1]


def test_repeated_rows_prefill_once_and_then_grow_on_their_own(lm):
    # rows 0, 2 and 3 are one prompt (the samples of a prompt, the completions of a prefix): it runs once, and its
    # copies take different tokens afterwards without touching each other's cache
    a, b = [5, 9, 11], [7, 8, 5, 6, 12]
    rows = [a, b, a, a]
    ids, mask = pad_batch(rows, 0, side="left")
    calls = []
    forward = lm_forward(lm)

    def counted(ids, mask, positions, cache):
        calls.append(ids.shape[0])
        return forward(ids, mask, positions, cache)

    stream = CausalStream(counted, lm.config)
    with torch.no_grad():
        first = stream.prefill(ids, mask)[:, -1]
        for row, got in zip(rows, first):
            torch.testing.assert_close(got, _last_logits_alone(lm, row), rtol=1e-4, atol=1e-5)
        assert calls == [2]  # two distinct rows went through the model
        for step in range(2):
            tokens = torch.tensor([20, 21, 22, 23]) + step
            logits = stream.append(tokens)
            rows = [row + [int(t)] for row, t in zip(rows, tokens)]
            for row, got in zip(rows, logits):
                torch.testing.assert_close(got, _last_logits_alone(lm, row), rtol=1e-4, atol=1e-5)
        assert calls == [2, 4, 4]
