"""Partial-sequence reward-model training: dense (one pass per response) vs materialised prefixes.

A causal RM (GPT-2 style, 4 layers, d_model 256, vocabulary 8000, random weights), batches of 8
pairs with 32-token prompts and responses of L = 64 / 128 / 256 tokens; one training step is
forward + backward + AdamW. Measured side by side in one run:

- **dense**: every one of the pair's L prefix terms from one forward pass of each response
  (``pargs.losses.partial_bt_loss``): 8 * L prefix pairs per step;
- **materialised**: each prefix pair is its own pair of sequences, the way encoder RMs (and the
  reference implementation) train; a step takes 8 prefix pairs with prefix lengths drawn uniformly;
- **full**: the ordinary full-sequence loss, the memory reference.

Peak memory is the most tensor memory a training step allocates on top of the weights and optimizer
state, read from the profiler's allocation events (CPU: torch's allocations are invisible to
tracemalloc, and resident-set sizes hide memory the allocator reuses).

Usage: python benchmarks/reward_loss.py [--lengths 64 128 256] [--out benchmarks/results/reward_loss.md]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
from transformers import GPT2Config, GPT2ForSequenceClassification

from pargs.losses import bradley_terry_loss, full_bt_loss, partial_bt_loss
from pargs.models.reward_model import rewards_at, token_rewards

PAIRS, PROMPT, VOCAB, LAYERS, D_MODEL = 8, 32, 8000, 4, 256


def build(length: int, seed: int = 0):
    torch.manual_seed(seed)
    cfg = GPT2Config(
        n_layer=LAYERS,
        n_embd=D_MODEL,
        n_head=4,
        n_positions=PROMPT + length + 8,
        vocab_size=VOCAB,
        num_labels=1,
        pad_token_id=0,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    model = GPT2ForSequenceClassification(cfg).train()
    g = torch.Generator().manual_seed(seed)
    len_w = torch.randint(length // 2, length + 1, (PAIRS,), generator=g)
    len_l = torch.randint(length // 2, length + 1, (PAIRS,), generator=g)
    len_w[0] = length  # the batch is as long as the longest response
    ids = torch.randint(1, VOCAB, (2 * PAIRS, PROMPT + length), generator=g)
    resp = torch.cat([len_w, len_l])
    mask = (torch.arange(PROMPT + length).unsqueeze(0) < (PROMPT + resp).unsqueeze(1)).long()
    return model, ids * mask, mask, torch.full((2 * PAIRS,), PROMPT), resp, g


def step_fn(mode: str, length: int):
    """A closure running one training step in ``mode`` and returning the prefix pairs it covered."""
    model, ids, mask, pl, rl, g = build(length)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    b = PAIRS

    def dense():
        r, _ = token_rewards(model, ids, mask)
        loss = partial_bt_loss(r[:b], r[b:], pl[:b], rl[:b], pl[b:], rl[b:])
        loss.backward()
        return int(torch.maximum(rl[:b], rl[b:]).sum())

    def full():
        r, _ = token_rewards(model, ids, mask)
        full_bt_loss(r[:b], r[b:], pl[:b], rl[:b], pl[b:], rl[b:]).backward()
        return b

    def materialised():
        n_terms = torch.maximum(rl[:b], rl[b:])
        i = (torch.rand(b, generator=g) * n_terms).long() + 1  # a prefix length per pair, uniform
        width = PROMPT + int(i.max())
        cut_w, cut_l = torch.minimum(i, rl[:b]), torch.minimum(i, rl[b:])
        lens = torch.cat([cut_w, cut_l])
        rows_mask = (torch.arange(width).unsqueeze(0) < (PROMPT + lens).unsqueeze(1)).long()
        rows = ids[:, :width] * rows_mask
        r = rewards_at(model, rows, rows_mask, PROMPT + lens - 1)
        bradley_terry_loss(r[:b], r[b:]).backward()
        return b

    body = {"dense": dense, "full": full, "materialised": materialised}[mode]

    def step():
        opt.zero_grad(set_to_none=True)
        n = body()
        opt.step()
        return n

    return step


def throughput(mode: str, length: int, seconds: float = 8.0) -> float:
    """Prefix pairs per second over about ``seconds`` of training steps, after one warm-up step."""
    step = step_fn(mode, length)
    step()
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        done += step()
    return done / (time.perf_counter() - start)


def peak_step_mb(mode: str, length: int) -> float:
    """Peak tensor memory (MB) allocated during one training step in ``mode``, after a warm-up step.

    Read from the profiler's allocation events (every allocation and free, in order): the running
    total's maximum is the step's peak on top of the weights and optimizer state it started with.
    """
    from torch.profiler import ProfilerActivity, profile

    step = step_fn(mode, length)
    step()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    events = sorted(
        (e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"), key=lambda e: e.start_ns()
    )
    current = peak = 0
    for e in events:
        current += e.nbytes()
        peak = max(peak, current)
    return peak / 2**20


def machine() -> str:
    cpu = platform.machine()
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return f"{cpu}, {torch.get_num_threads()} threads, torch {torch.__version__}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--seconds", type=float, default=8.0, help="timing window per measurement")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "reward_loss.md"))
    ns = parser.parse_args()
    rows = []
    for length in ns.lengths:
        dense, mat = throughput("dense", length, ns.seconds), throughput("materialised", length, ns.seconds)
        mem = {m: peak_step_mb(m, length) for m in ("dense", "full", "materialised")}
        rows.append((length, dense, mat, mem))
        print(
            json.dumps({"L": length, "pairs/s dense": dense, "pairs/s materialised": mat, "peak MB": mem}), flush=True
        )
    lines = [
        "# Partial-sequence RM training: dense vs materialised prefixes",
        "",
        f"Machine: {machine()}. Causal RM: GPT-2 style, {LAYERS} layers, d_model {D_MODEL}, vocabulary {VOCAB}; "
        f"{PAIRS} pairs per batch, {PROMPT}-token prompts, responses of L/2..L tokens. A step is forward + backward "
        "+ AdamW. Peak MB: the most tensor memory one step allocates on top of weights and optimizer state "
        "(profiler allocation events). Written by `python benchmarks/reward_loss.py`.",
        "",
        "| L | dense prefix-pairs/s | materialised prefix-pairs/s | dense / materialised | peak MB dense "
        "| peak MB full-sequence | dense / full | peak MB materialised |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for length, dense, mat, mem in rows:
        lines.append(
            f"| {length} | {dense:.0f} | {mat:.1f} | {dense / mat:.0f}x | {mem['dense']:.0f} | "
            f"{mem['full']:.0f} | {mem['dense'] / mem['full']:.2f}x | {mem['materialised']:.0f} |"
        )
    text = "\n".join(lines) + "\n"
    Path(ns.out).parent.mkdir(parents=True, exist_ok=True)
    Path(ns.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
