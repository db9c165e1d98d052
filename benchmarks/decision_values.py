"""Decision values: what the study's ``decisions`` step costs per seed, on the quickstart's model shapes.

The study's step (pargs/study/pipeline.py ``decisions``) draws ``--states`` decoding states on held-out prompts,
estimates the value of each state's k = 10 candidates from ``--m`` completions each
(:func:`pargs.metrics.decision_values.decision_values`) and scores the candidates with three causal reward models
(partial RM, full RM, CD-FUDGE value model) through the cached scorer. The models here have the quickstart's
shapes (GPT-2, 2 layers, d_model 128; lightning_configs/quickstart/*.yaml): the policy after a short supervised
fine-tuning on writer responses (``--sft-steps``, as in benchmarks/prefix_values.py), so its responses end the
way a trained pi_ref's do, and three reward models with random weights (their weights do not change the cost).
A second run of the Monte Carlo part with the shared prefill of repeated rows turned off shows what that saves.

The table counts the work (forward passes and tokens through each model, completions drawn), which does not
depend on the machine, and gives the wall time of each part as measured here, marked with the load average:
on a shared machine the times are upper bounds.

Usage: python benchmarks/decision_values.py [--states 120] [--m 32] [--k 10] [--sft-steps 300] [--threads 0]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from contextlib import contextmanager
from pathlib import Path

import torch
from transformers import GPT2Config, GPT2ForSequenceClassification

from benchmarks.prefix_values import heldout_pairs, quick_sft, quickstart_lm
from pargs.decoding import stream
from pargs.decoding.cached_scorer import CachedCausalScorer
from pargs.decoding.text_reward import OracleReward
from pargs.metrics.decision_values import candidate_scores, decision_values, draw_states
from pargs.tasks.synthetic import vocabulary
from pargs.tasks.word_tokenizer import build_word_tokenizer


class Counter:
    """Forward passes and input tokens (rows x positions) through a model's transformer, from a pre-hook."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.calls = self.tokens = 0
        self._handle = module.register_forward_pre_hook(self._count, with_kwargs=True)

    def _count(self, module, args, kwargs) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        self.calls += 1
        self.tokens += int(ids.numel())

    def take(self) -> tuple[int, int]:
        out = (self.calls, self.tokens)
        self.calls = self.tokens = 0
        return out


@contextmanager
def every_row_prefilled():
    """Turn off the shared prefill of repeated rows (pargs/decoding/stream.py), for the side-by-side row."""
    shared = stream._first_of_equal_rows
    stream._first_of_equal_rows = lambda rows: (None, None)
    try:
        yield
    finally:
        stream._first_of_equal_rows = shared


def quickstart_rm(tokenizer, seed: int) -> GPT2ForSequenceClassification:
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
        num_labels=1,
    )
    return GPT2ForSequenceClassification(cfg).eval()


def run(policy, tokenizer, prompts, n_states: int, m: int, k: int) -> list[tuple[str, int, int, float, str]]:
    """Each part of the step: (part, forward passes, tokens through the model, seconds, what it produced)."""
    counter = Counter(policy.transformer)
    rows = []
    start = time.perf_counter()
    states = draw_states(policy, tokenizer, prompts, n_states, seed=0)
    calls, tokens = counter.take()
    rows.append(("draw states (pi_ref responses)", calls, tokens, time.perf_counter() - start, f"{len(states)} states"))
    start = time.perf_counter()
    decisions = decision_values(policy, tokenizer, states, OracleReward(), k=k, m=m, seed=0)
    calls, tokens = counter.take()
    drawn = sum(v.n for d in decisions for v in d.values)
    eos = sum(sum(d.eos) for d in decisions)
    cut = sum(v.truncated for d in decisions for v in d.values)
    sampled = [v.se for d in decisions for v in d.values if v.n]
    se = sum(sampled) / max(1, len(sampled))
    paired, independent = [], []
    for d in decisions:  # as the study's report: pairs of a sampled candidate and its state's best, sampled too
        best = max(range(k), key=lambda j: (d.means[j], -j))
        for j in range(k):
            if j != best and d.values[j].n and d.values[best].n:
                paired.append(d.se_diff[j])
                independent.append((d.values[j].se ** 2 + d.values[best].se ** 2) ** 0.5)
    note = (
        f"{drawn} completions ({eos} EOS candidates exact, {cut / max(drawn, 1):.1%} cut at 32 tokens); mean SE of a "
        f"value {se:.3f}; mean SE of a difference to the best candidate {sum(paired) / len(paired):.3f} paired "
        f"(common random numbers) vs {sum(independent) / len(independent):.3f} for independent draws"
    )
    rows.append(("candidates + Monte Carlo values", calls, tokens, time.perf_counter() - start, note))
    with every_row_prefilled():
        start = time.perf_counter()
        again = decision_values(policy, tokenizer, states, OracleReward(), k=k, m=m, seed=0)
        calls, tokens = counter.take()
    same = "the same values" if [d.values for d in again] == [d.values for d in decisions] else "OTHER VALUES"
    rows.append(("the same, every row prefilled on its own", calls, tokens, time.perf_counter() - start, same))
    for name, seed in (("partial RM", 1), ("full RM", 2), ("value model", 3)):
        rm = quickstart_rm(tokenizer, seed)
        rm_counter = Counter(rm.transformer)
        start = time.perf_counter()
        candidate_scores(CachedCausalScorer(rm), tokenizer, decisions)
        calls, tokens = rm_counter.take()
        rows.append((f"scores: {name}", calls, tokens, time.perf_counter() - start, f"{len(decisions) * k} candidates"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--states", type=int, default=120)
    parser.add_argument("--m", type=int, default=32)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--prompts", type=int, default=60, help="held-out prompts the states cycle through")
    parser.add_argument("--sft-steps", type=int, default=300)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "decision_values.md"))
    ns = parser.parse_args()
    if ns.threads:
        torch.set_num_threads(ns.threads)
    tokenizer = build_word_tokenizer(vocabulary())
    prompts = [{"id": p["id"], "prompt": p["prompt"]} for p in heldout_pairs(ns.prompts)]
    policy = quickstart_lm(tokenizer)
    sft_seconds = quick_sft(policy, tokenizer, ns.sft_steps)
    load_before = os.getloadavg()[0]
    rows = run(policy, tokenizer, prompts, ns.states, ns.m, ns.k)
    load_after = os.getloadavg()[0]
    total = sum(r[3] for r in rows if not r[0].startswith("the same"))
    cpu = platform.processor() or platform.machine()
    lines = [
        "# Decision values: the cost of the study's `decisions` step per seed",
        "",
        f"Machine: {cpu}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, Python "
        f"{platform.python_version()}. {ns.states} states on {ns.prompts} held-out prompts, k = {ns.k} candidates, "
        f"m = {ns.m} completions each, responses of at most 32 tokens; policy: GPT-2 of the quickstart's shape (2 "
        f"layers, d_model 128) after {ns.sft_steps} fine-tuning steps ({sft_seconds:.0f} s, not counted); reward "
        "models of the same shape. Written by `python benchmarks/decision_values.py`.",
        "",
        "| part | forward passes | tokens through the model | wall s | what |",
        "|---|---:|---:|---:|---|",
    ]
    for part, calls, tokens, seconds, what in rows:
        lines.append(f"| {part} | {calls} | {tokens} | {seconds:.1f} | {what} |")
    lines += [
        f"| **all** | | | **{total:.1f}** | |",
        "",
        "Tokens through the model: rows x positions of each forward pass (a prefill counts every prompt token of "
        "every row; padding included). The work grows linearly in the states and in m. The row 'every row "
        "prefilled on its own' runs the Monte Carlo part again with the shared prefill of repeated rows turned "
        "off (each candidate's m completion rows are one prompt; pargs/decoding/stream.py), side by side; it is "
        "not in the total. "
        f"Load average (1 min) {load_before:.1f} before the run, {load_after:.1f} after it, on {os.cpu_count()} "
        "cores: the times were measured on a shared machine and are upper bounds.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    Path(ns.out).write_text(text)


if __name__ == "__main__":
    main()
