"""What pargs puts into Lightning checkpoints: plain data only, so they load with ``weights_only=True``.

- hyperparameters with dataclass configs (``ModelSpec`` ...) are stored as plain dicts;
- the random-number-generator state (Python, NumPy, torch CPU and CUDA) is stored as lists and
  tensors, so a resumed run continues the same random stream (dropout, sampling).
"""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import torch


def to_plain(value):
    """Dataclasses (also inside lists, tuples and dicts) turned into dicts."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_plain(v) for v in value)
    return value


def capture_rng_state() -> dict:
    """The state of Python's, NumPy's and torch's (CPU and CUDA) generators, as plain data."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    """Put back a state from :func:`capture_rng_state`."""
    random.setstate(state["python"])
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
