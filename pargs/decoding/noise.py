"""Counter-based random noise, so a sampled token depends only on (row seed, step, token id).

Sampling with one shared ``torch.Generator`` makes every row's draw depend on the batch it sits in;
a resumed or re-sharded run would then produce different text. Here each row carries a 62-bit seed
derived from (run seed, prompt id, method, sample index), and the Gumbel noise of token v at step t
is a fixed hash of (seed, t, v). Results are therefore independent of batch size and order, and
two methods that sample over the same candidates with the same scores draw the same token.
"""

from __future__ import annotations

import hashlib

import torch
from torch import Tensor

_M32 = 0xFFFFFFFF


def stable_seed(*parts: object) -> int:
    """A 62-bit seed from any printable parts (the same on every machine and Python run)."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 62) - 1)


def _mix32(x: Tensor | int) -> Tensor | int:
    """A 32-bit integer finaliser (lowbias32), computed in int64 (or a Python int) and masked to 32 bits."""
    x = x & _M32
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & _M32
    x = x ^ (x >> 15)
    x = (x * 0x846CA68B) & _M32
    return x ^ (x >> 16)


def uniform_noise(seeds: Tensor, step: int | Tensor, token_ids: Tensor) -> Tensor:
    """Uniform(0, 1) noise, float64, with the shape of ``token_ids`` ``[B, n]`` for row ``seeds`` ``[B]``."""
    seeds = seeds.to(torch.int64).unsqueeze(1)
    lo, hi = seeds & _M32, (seeds >> 32) & _M32
    if isinstance(step, Tensor):  # the static path's step counter, on the device
        step = step.to(dtype=torch.int64, device=token_ids.device)
    # a Python int step (the eager loop) is hashed on the host, exactly (every value stays below 2**63): the same
    # bits without a copy to the device and 12 kernel launches per step, which a GPU's eager loop waits for
    h = _mix32(lo ^ _mix32(hi + 0x9E3779B9))
    h = _mix32(h ^ _mix32(step + 0x85EBCA6B))
    h1 = _mix32(h ^ _mix32(token_ids.to(torch.int64) + 0xC2B2AE35))
    h2 = _mix32(h1 + 0x27D4EB2F)
    bits = (h1 << 21) ^ (h2 >> 11)  # 53 random bits
    return ((bits & ((1 << 53) - 1)).to(torch.float64) + 0.5) * (1.0 / (1 << 53))


def gumbel_noise(seeds: Tensor, step: int | Tensor, token_ids: Tensor) -> Tensor:
    """Standard Gumbel noise keyed like :func:`uniform_noise` (float32)."""
    u = uniform_noise(seeds, step, token_ids)
    return (-torch.log(-torch.log(u))).to(torch.float32)


def sample_from_scores(scores: Tensor, seeds: Tensor, step: int, token_ids: Tensor) -> Tensor:
    """Index ``[B]`` drawn from ``softmax(scores)`` along the last dim (Gumbel-max), ``-inf`` = excluded."""
    noisy = scores.float() + gumbel_noise(seeds, step, token_ids).to(scores.device)
    return noisy.argmax(dim=-1)


def child_seeds(seeds: Tensor, n: int) -> Tensor:
    """``[B * n]`` seeds for n independent draws per row (row-major: row 0's n seeds come first)."""
    seeds = seeds.to(torch.int64).repeat_interleave(n)
    j = torch.arange(n, dtype=torch.int64, device=seeds.device).repeat(seeds.numel() // max(n, 1))
    lo, hi = seeds & _M32, (seeds >> 32) & _M32
    new_lo = _mix32(lo ^ _mix32(j + 0x165667B1))
    new_hi = _mix32(hi ^ _mix32(new_lo + j + 0x61C88647)) & 0x3FFFFFFF
    return (new_hi << 32) | new_lo
