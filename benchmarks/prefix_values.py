"""Monte Carlo prefix values: throughput on the quickstart's model shape.

The policy is a GPT-2 of the quickstart's shape (lightning_configs/quickstart/sft.yaml: 2 layers,
d_model 128, 4 heads, 64 positions) over the synthetic task's word vocabulary. Two policies are timed:

- ``random``: random weights. EOS is one token of ~180, so nearly every completion runs to the
  32-token cap: the most a completion can cost.
- ``sft``: the same shape after a short supervised fine-tuning on writer responses (``--sft-steps``
  AdamW steps), so completions end the way a trained pi_ref's do (with EOS, after a few clauses).

Each run estimates the values of ``--pairs`` preference pairs (written by the task's noisy writer on
held-out prompts) x 4 fractions x 2 sides with ``--m`` completions per prefix and responses of at
most 32 tokens, through :func:`pargs.metrics.prefix_values.prefix_values` with the synthetic oracle.
Complete prefixes (all of 100 %, and a shorter response past its end) are scored without sampling,
so fewer than pairs x 4 x 2 x m completions are drawn; the table gives both counts.

Usage: python benchmarks/prefix_values.py [--pairs 100] [--m 16] [--sft-steps 300] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import time
from pathlib import Path

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from pargs.metrics.prefix_values import prefix_values
from pargs.models.encoding import encode_prompt, encode_response, pad_batch
from pargs.tasks.synthetic import WriterConfig, oracle_reward, split_prompts, vocabulary, write_response
from pargs.tasks.word_tokenizer import build_word_tokenizer


def quickstart_lm(tokenizer, seed: int = 0) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    cfg = GPT2Config(
        n_layer=2,
        n_embd=128,
        n_head=4,
        n_positions=64,
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id,
    )
    return GPT2LMHeadModel(cfg)


def quick_sft(model: GPT2LMHeadModel, tokenizer, steps: int, seed: int = 0) -> float:
    """A few AdamW steps on (prompt, writer response) rows, loss on the response tokens; returns seconds."""
    rng = random.Random(seed)
    train, _ = split_prompts(seed, 120)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    model.train()
    start = time.perf_counter()
    for _ in range(steps):
        rows, targets = [], []
        for _ in range(64):
            p = rng.choice(train)
            prompt, response = encode_prompt(tokenizer, p.text), encode_response(tokenizer, write_response(p, rng))
            rows.append(prompt + response)
            targets.append([-100] * len(prompt) + response)
        ids, mask = pad_batch(rows, tokenizer.pad_token_id)
        labels = torch.full_like(ids, -100)
        for i, t in enumerate(targets):
            labels[i, : len(t)] = torch.tensor(t)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    return time.perf_counter() - start


def heldout_pairs(n: int, seed: int = 0) -> list[dict]:
    _, heldout = split_prompts(seed, 120)
    rng = random.Random(seed + 7)
    pairs = []
    for i in range(n):
        p = rng.choice(heldout)
        a = write_response(p, rng, WriterConfig())
        b = write_response(p, rng, WriterConfig())
        if oracle_reward(p, b) > oracle_reward(p, a):
            a, b = b, a
        pairs.append({"id": f"bench-{i:04d}", "prompt": p.text, "chosen": a, "rejected": b})
    return pairs


def run(policy, tokenizer, pairs, m: int) -> dict:
    start = time.perf_counter()
    gt = prefix_values(policy, tokenizer, pairs, m=m, seed=0, max_new_tokens=32)
    seconds = time.perf_counter() - start
    distinct = {}
    for c in gt.comparisons:
        distinct[(c.pair_id, "w", c.length_w)] = c.chosen
        distinct[(c.pair_id, "l", c.length_l)] = c.rejected
    drawn = sum(v.n for v in distinct.values())
    cut = sum(v.truncated for v in distinct.values())
    return {
        "seconds": seconds,
        "drawn": drawn,
        "per_s": drawn / seconds,
        "truncated": cut / max(drawn, 1),
        "se": gt.mean_se(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--m", type=int, default=16)
    parser.add_argument("--sft-steps", type=int, default=300)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "prefix_values.md"))
    ns = parser.parse_args()
    if ns.threads:
        torch.set_num_threads(ns.threads)
    load_before = os.getloadavg()[0]
    tokenizer = build_word_tokenizer(vocabulary())
    pairs = heldout_pairs(ns.pairs)
    nominal = ns.pairs * 4 * 2 * ns.m
    results = {"random": run(quickstart_lm(tokenizer).eval(), tokenizer, pairs, ns.m)}
    sft = quickstart_lm(tokenizer)
    sft_seconds = quick_sft(sft, tokenizer, ns.sft_steps)
    results[f"sft ({ns.sft_steps} steps)"] = run(sft, tokenizer, pairs, ns.m)
    cpu = platform.processor() or platform.machine()
    lines = [
        "# Monte Carlo prefix values: throughput",
        "",
        f"Machine: {cpu}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, Python "
        f"{platform.python_version()}; a CPU shared with other jobs while it ran, so the times are upper bounds. "
        f"{ns.pairs} pairs x 4 fractions x 2 sides x m = {ns.m} ({nominal} nominal completions), responses of at "
        "most 32 tokens, GPT-2 of the quickstart's shape (2 layers, d_model 128). Written by "
        "`python benchmarks/prefix_values.py`.",
        "",
        "| policy | completions drawn | wall s | completions / s | cut at 32 tokens | mean SE 25 / 50 / 75 % |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        se = " / ".join(f"{r['se'][f]:.3f}" for f in (0.25, 0.5, 0.75))
        lines.append(f"| {name} | {r['drawn']} | {r['seconds']:.1f} | {r['per_s']:.0f} | {r['truncated']:.1%} | {se} |")
    load_after = os.getloadavg()[0]
    lines += [
        "",
        f"The short fine-tuning took {sft_seconds:.0f} s and is not in the times above. Load average "
        f"(1 min) {load_before:.1f} before the run, {load_after:.1f} after it, on {os.cpu_count()} cores.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    Path(ns.out).write_text(text)


if __name__ == "__main__":
    main()
