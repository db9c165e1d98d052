"""Time per generated token from prediction records (warm-up already excluded by the writer)."""

from __future__ import annotations

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
