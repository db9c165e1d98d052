"""Write the synthetic task's files: SFT corpus, preference pairs, training and held-out prompts, tokenizer.

Everything is a deterministic function of the seed and the sizes. The prompt combinations are split
once: SFT and training pairs use the training prompts; validation pairs and test prompts use the
held-out prompts, which no model is trained on. With ``n_val_prompts`` a further block of combinations,
held out of training too, becomes the validation prompts that ``pargs study`` tunes on (disjoint from
the test prompts).
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import asdict, dataclass
from pathlib import Path

from pargs.records import write_jsonl
from pargs.tasks.synthetic import (
    Prompt,
    WriterConfig,
    bradley_terry_label,
    oracle_reward,
    split_prompts,
    vocabulary,
    write_response,
)
from pargs.tasks.word_tokenizer import save_word_tokenizer

log = logging.getLogger(__name__)


@dataclass
class SyntheticSizes:
    """How much of each split to write."""

    seed: int = 0  #: seed of every random draw
    n_sft: int = 6000  #: SFT examples (prompt, writer response)
    n_sft_val: int = 300  #: SFT validation examples (held-out prompts)
    n_pairs: int = 3000  #: training preference pairs
    n_pairs_val: int = 400  #: validation preference pairs (held-out prompts)
    n_heldout_prompts: int = 120  #: prompt combinations held out of training (<= 359)
    n_test: int = 120  #: test prompts, drawn from the held-out combinations
    n_val_prompts: int = 0  #: validation prompts (``pargs study`` tunes on them): more held-out combinations, none a
    #: test or training prompt; 0 (the quickstart) writes none and leaves the training prompts as they were
    n_reference_candidates: int = 16  #: a test prompt's reference is the best of this many writer samples
    bt_temperature: float = 1.0  #: label noise: P(a > b) = sigmoid((r_a - r_b) / bt_temperature)


def _pair(prompt: Prompt, rng: random.Random, cfg: WriterConfig, temperature: float) -> tuple[str, str, float, float]:
    a = write_response(prompt, rng, cfg)
    b = write_response(prompt, rng, cfg)
    while b == a:
        b = write_response(prompt, rng, cfg)
    ra, rb = oracle_reward(prompt, a), oracle_reward(prompt, b)
    if bradley_terry_label(ra, rb, temperature, rng):
        return a, b, ra, rb
    return b, a, rb, ra


def prepare_synthetic(out_dir: str | Path, sizes: SyntheticSizes | None = None) -> dict:
    """Write the task under ``out_dir`` and return a summary (also saved as ``task.json``)."""
    sizes = sizes or SyntheticSizes()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg = WriterConfig()
    train_prompts, heldout = split_prompts(sizes.seed, sizes.n_heldout_prompts + sizes.n_val_prompts)
    # the first n_heldout_prompts of the shuffled held-out block are what they are without validation prompts
    heldout, val_prompts = heldout[: sizes.n_heldout_prompts], heldout[sizes.n_heldout_prompts :]
    rng = random.Random(sizes.seed + 1)

    def sft(n: int, prompts: list[Prompt], tag: str) -> list[dict]:
        rows = []
        for i in range(n):
            p = rng.choice(prompts)
            rows.append({"id": f"{tag}-{i:06d}", "prompt": p.text, "response": write_response(p, rng, cfg)})
        return rows

    def pairs(n: int, prompts: list[Prompt], tag: str) -> tuple[list[dict], float]:
        rows, agree = [], 0
        for i in range(n):
            p = rng.choice(prompts)
            chosen, rejected, rc, rr = _pair(p, rng, cfg, sizes.bt_temperature)
            agree += rc > rr
            rows.append(
                {
                    "id": f"{tag}-{i:06d}",
                    "prompt": p.text,
                    "chosen": chosen,
                    "rejected": rejected,
                    "source": "synthetic",
                    "meta": {"oracle_chosen": rc, "oracle_rejected": rr},
                }
            )
        return rows, agree / max(n, 1)

    files = {}
    files["sft_train"] = write_jsonl(out / "sft_train.jsonl", sft(sizes.n_sft, train_prompts, "sft"))
    files["sft_val"] = write_jsonl(out / "sft_val.jsonl", sft(sizes.n_sft_val, heldout, "sftval"))
    train_rows, train_agree = pairs(sizes.n_pairs, train_prompts, "pair")
    val_rows, val_agree = pairs(sizes.n_pairs_val, heldout, "pairval")
    files["pairs_train"] = write_jsonl(out / "pairs_train.jsonl", train_rows)
    files["pairs_val"] = write_jsonl(out / "pairs_val.jsonl", val_rows)

    test_rows = []
    for i in range(sizes.n_test):
        p = heldout[i % len(heldout)]
        candidates = [write_response(p, rng, cfg) for _ in range(sizes.n_reference_candidates)]
        reference = max(candidates, key=lambda r: oracle_reward(p, r))
        test_rows.append(
            {
                "id": f"test-{i:04d}",
                "prompt": p.text,
                "reference": reference,
                "meta": {"oracle_reference": oracle_reward(p, reference)},
            }
        )
    files["prompts_test"] = write_jsonl(out / "prompts_test.jsonl", test_rows)
    # every training prompt combination once: the prompts of methods that sample their own data (PPO, CD-FUDGE)
    files["prompts_train"] = write_jsonl(
        out / "prompts_train.jsonl", ({"id": f"train-{i:04d}", "prompt": p.text} for i, p in enumerate(train_prompts))
    )
    if val_prompts:  # each validation combination once; none is a training or a test prompt
        files["prompts_val"] = write_jsonl(
            out / "prompts_val.jsonl", ({"id": f"val-{i:04d}", "prompt": p.text} for i, p in enumerate(val_prompts))
        )
    save_word_tokenizer(vocabulary(), out / "tokenizer")

    summary = {
        "task": "synthetic-reviews",
        "sizes": asdict(sizes),
        "writer": asdict(cfg),
        "files": {name: {"path": f"{name}.jsonl", "records": n} for name, n in files.items()},
        "tokenizer": "tokenizer",
        "label_agreement_with_oracle": {"train": round(train_agree, 4), "val": round(val_agree, 4)},
        "n_train_prompt_combinations": len(train_prompts),
        "n_heldout_prompt_combinations": len(heldout),
        "n_validation_prompt_combinations": len(val_prompts),
    }
    (out / "task.json").write_text(json.dumps(summary, indent=2) + "\n")
    log.info("synthetic task written to %s (%s)", out, ", ".join(f"{k}={v}" for k, v in files.items()))
    return summary
