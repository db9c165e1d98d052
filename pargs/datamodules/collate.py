"""Collators: tokenized examples to padded tensors (no lightning here; tested on their own)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pargs.models.encoding import pad_batch


@dataclass
class PairCollator:
    """Stack preference pairs as ``2B`` right-padded rows: the B chosen rows, then the B rejected rows.

    Each example holds ``prompt`` and ``chosen`` / ``rejected`` id lists (responses end with EOS).
    The batch has ``input_ids``/``attention_mask`` ``[2B, T]``, ``prompt_len``/``response_len``
    ``[2B]`` (so a reward read at ``prompt_len + i - 1`` is the reward of the i-token prefix) and
    the record ``ids``; ``margin`` ``[B]`` when every example has one; ``prefix_rows`` tells whether
    the examples are materialised prefix pairs (:mod:`pargs.datamodules.prefix_rows`).
    """

    pad_id: int

    def __call__(self, examples: list[dict]) -> dict:
        seqs, prompt_len, response_len = [], [], []
        for side in ("chosen", "rejected"):
            for ex in examples:
                seqs.append(ex["prompt"] + ex[side])
                prompt_len.append(len(ex["prompt"]))
                response_len.append(len(ex[side]))
        input_ids, attention_mask = pad_batch(seqs, self.pad_id, side="right")
        batch = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "prompt_len": torch.tensor(prompt_len),
            "response_len": torch.tensor(response_len),
            "ids": [ex["id"] for ex in examples],
            "prefix_rows": any(ex.get("prefix", False) for ex in examples),
        }
        if all(ex.get("margin") is not None for ex in examples):
            batch["margin"] = torch.tensor([float(ex["margin"]) for ex in examples])
        return batch


@dataclass
class SFTCollator:
    """Right-padded ``prompt + response`` rows with ``labels`` = -100 wherever no loss is taken."""

    pad_id: int
    loss_on_prompt: bool = False  #: also train on the prompt tokens

    def __call__(self, examples: list[dict]) -> dict:
        seqs = [ex["prompt"] + ex["response"] for ex in examples]
        input_ids, attention_mask = pad_batch(seqs, self.pad_id, side="right")
        labels = input_ids.clone()
        labels[attention_mask == 0] = -100
        if not self.loss_on_prompt:
            for i, ex in enumerate(examples):
                labels[i, : len(ex["prompt"])] = -100
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


@dataclass
class RolloutCollator:
    """Right-padded ``prompt + response`` rows of scored rollouts, for prefix value regression.

    The batch has ``input_ids``/``attention_mask`` ``[B, T]``, ``prompt_len``/``response_len`` ``[B]``
    (the value of the i-token prefix is read at ``prompt_len + i - 1``), ``reward`` ``[B]`` and the ``ids``.
    """

    pad_id: int

    def __call__(self, examples: list[dict]) -> dict:
        rows = [ex["prompt"] + ex["response"] for ex in examples]
        input_ids, attention_mask = pad_batch(rows, self.pad_id, side="right")
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "prompt_len": torch.tensor([len(ex["prompt"]) for ex in examples]),
            "response_len": torch.tensor([len(ex["response"]) for ex in examples]),
            "reward": torch.tensor([float(ex["reward"]) for ex in examples]),
            "ids": [ex["id"] for ex in examples],
        }
