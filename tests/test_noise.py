import torch

from pargs.decoding.noise import child_seeds, sample_from_scores, stable_seed, uniform_noise


def test_stable_seed_is_a_fixed_function_of_its_parts():
    assert stable_seed(0, "p1", "pargs", 3) == stable_seed(0, "p1", "pargs", 3)
    assert stable_seed(0, "p1", "pargs", 3) != stable_seed(0, "p1", "pargs", 4)
    assert 0 <= stable_seed("x") < 2**62


def test_uniform_noise_is_uniform_and_keyed_by_seed_step_token():
    seeds = torch.tensor([stable_seed(i) for i in range(8)])
    tokens = torch.arange(5000).expand(8, -1)
    u = uniform_noise(seeds, 7, tokens)
    assert ((u > 0) & (u < 1)).all()
    # each decile holds ~10 % of 40,000 draws (binomial sd ~ 60)
    counts = torch.histc(u.float(), bins=10, min=0, max=1)
    assert (counts - 4000).abs().max() < 300
    assert torch.equal(uniform_noise(seeds[2:3], 7, tokens[:1]), u[2:3])  # independent of the batch
    assert not torch.equal(uniform_noise(seeds, 8, tokens), u)


def test_gumbel_max_sampling_frequencies():
    scores = torch.log(torch.tensor([[0.5, 0.3, 0.2, 0.0]]))
    n = 20000
    seeds = torch.tensor([stable_seed("g", i) for i in range(n)])
    picks = sample_from_scores(scores.expand(n, -1), seeds, 0, torch.arange(4).expand(n, -1))
    freq = torch.bincount(picks, minlength=4).float() / n
    assert torch.allclose(freq, torch.tensor([0.5, 0.3, 0.2, 0.0]), atol=0.015)


def test_child_seeds_are_distinct():
    kids = child_seeds(torch.tensor([stable_seed(1), stable_seed(2)]), 50)
    assert kids.numel() == 100 and kids.unique().numel() == 100 and (kids >= 0).all()


def _lowbias32(x: int) -> int:
    x &= 0xFFFFFFFF
    x ^= x >> 16
    x = (x * 0x7FEB352D) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x846CA68B) & 0xFFFFFFFF
    return x ^ (x >> 16)


def _uniform_by_hand(seed: int, step: int, token: int) -> float:
    """The noise's definition in plain Python integers: the same bits on every path and device."""
    lo, hi = seed & 0xFFFFFFFF, (seed >> 32) & 0xFFFFFFFF
    h = _lowbias32(lo ^ _lowbias32(hi + 0x9E3779B9))
    h = _lowbias32(h ^ _lowbias32(step + 0x85EBCA6B))
    h1 = _lowbias32(h ^ _lowbias32(token + 0xC2B2AE35))
    h2 = _lowbias32(h1 + 0x27D4EB2F)
    bits = ((h1 << 21) ^ (h2 >> 11)) & ((1 << 53) - 1)
    return (bits + 0.5) / (1 << 53)


def test_noise_of_an_int_step_and_of_a_step_tensor_is_the_same_as_by_hand():
    """The eager loop passes the step as an int, the static path as a 0-dim tensor: the same bits either way."""
    seeds = torch.tensor([stable_seed("n", i) for i in range(3)])
    tokens = torch.tensor([[0, 5, 31999], [7, 7, 2], [123456, 1, 9]])
    for step in (0, 1, 127, 4095):
        by_int = uniform_noise(seeds, step, tokens)
        assert torch.equal(by_int, uniform_noise(seeds, torch.tensor(step), tokens))
        want = [[_uniform_by_hand(int(s), step, int(t)) for t in row] for s, row in zip(seeds, tokens)]
        assert by_int.tolist() == want


def test_an_int_step_is_hashed_without_tensor_operations_on_it():
    """On a GPU every tensor operation of the eager loop is a kernel launch the host waits for; the step's part of
    the hash (12 operations and a copy to the device) is computed on the host instead."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.ops = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.ops += 1
            return func(*args, **(kwargs or {}))

    seeds, tokens = torch.tensor([stable_seed("n", 0)]), torch.tensor([[3, 4]])
    counts = {}
    for kind, step in (("int", 5), ("tensor", torch.tensor(5))):
        with Count() as count:
            uniform_noise(seeds, step, tokens)
        counts[kind] = count.ops
    assert counts["int"] <= counts["tensor"] - 12
