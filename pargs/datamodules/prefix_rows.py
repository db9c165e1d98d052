"""Materialised prefix pairs, for reward models that cannot score every prefix in one pass (encoders).

Each row is one Bradley-Terry term of the partial-sequence loss: the prompt with both responses cut
to the same prefix length i (under the pad rule, a response shorter than i stays whole, EOS
included). ``rows="all"`` lists every term of every pair (what the dense causal path computes);
a number r draws ``round(r * n_pairs)`` rows per epoch -- pairs uniformly with replacement and i
uniformly among a pair's terms -- anew each epoch from (seed, epoch): the paper's 1x / 1.5x / 2x / 3x
settings are r = 1, 1.5, 2, 3.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from pargs.errors import ConfigError
from pargs.prefixes import PadRule, check_pad_rule, sample_prefix_rows


class PrefixRows(Dataset):
    """Prefix-pair rows of tokenized pairs ``{"id", "prompt", "chosen", "rejected"}``."""

    def __init__(
        self, pairs: list[dict], rows: float | str, seed: int, pad_rule: PadRule = "longest", weighting: str = "term"
    ) -> None:
        check_pad_rule(pad_rule)
        if not (rows == "all" or (isinstance(rows, (int, float)) and rows > 0)):
            raise ConfigError(f"prefix_rows must be 'all' or a ratio > 0 (the paper: 1, 1.5, 2, 3), got {rows!r}")
        self.pairs, self.rows, self.seed, self.pad_rule, self.weighting = pairs, rows, seed, pad_rule, weighting
        len_w = torch.tensor([len(p["chosen"]) for p in pairs])
        len_l = torch.tensor([len(p["rejected"]) for p in pairs])
        self._lens = (len_w, len_l)
        self.index: list[tuple[int, int]] = []
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Draw this epoch's rows (a fixed function of (seed, epoch); "all" never changes)."""
        len_w, len_l = self._lens
        n_terms = (torch.maximum if self.pad_rule == "longest" else torch.minimum)(len_w, len_l).tolist()
        if self.rows == "all":
            self.index = [(p, i) for p, n in enumerate(n_terms) for i in range(1, n + 1)]
            return
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        pair, length = sample_prefix_rows(len_w, len_l, float(self.rows), g, self.pad_rule, self.weighting)
        self.index = list(zip(pair.tolist(), length.tolist()))

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, k: int) -> dict:
        p, i = self.index[k]
        pair = self.pairs[p]
        return dict(pair, id=f"{pair['id']}@{i}", chosen=pair["chosen"][:i], rejected=pair["rejected"][:i], prefix=True)
