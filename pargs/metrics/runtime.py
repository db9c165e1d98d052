"""Time per generated token from prediction records (warm-up already excluded by the writer), and its SE."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping


def time_per_token(records: Iterable[Mapping]) -> float:
    """Seconds per generated token: total ``decode_seconds`` over total ``tokens``."""
    seconds = tokens = 0.0
    for rec in records:
        seconds += rec["decode_seconds"]
        tokens += rec["tokens"]
    if tokens == 0:
        raise ValueError("no generated tokens to time")
    return seconds / tokens


def time_per_token_se(records: Iterable[Mapping]) -> float:
    """Standard error of :func:`time_per_token` with prompts as the independent units (nan for one prompt).

    The estimate is a ratio of sums, ``R = sum_i t_i / sum_i n_i`` over prompts i (seconds and tokens of
    all its samples); its linearised (delta-method) SE is ``sqrt(m / (m - 1) * sum_i (t_i - R n_i)^2) /
    sum_i n_i`` for m prompts.
    """
    seconds: dict[str, float] = defaultdict(float)
    tokens: dict[str, float] = defaultdict(float)
    for rec in records:
        seconds[str(rec["id"])] += rec["decode_seconds"]
        tokens[str(rec["id"])] += rec["tokens"]
    total = math.fsum(tokens.values())
    if total == 0:
        raise ValueError("no generated tokens to time")
    m = len(tokens)
    if m < 2:
        return math.nan
    ratio = math.fsum(seconds.values()) / total
    spread = math.fsum((seconds[p] - ratio * tokens[p]) ** 2 for p in tokens)
    return math.sqrt(m / (m - 1) * spread) / total
