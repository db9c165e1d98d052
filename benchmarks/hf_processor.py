"""PARGS-G inside Hugging Face ``generate`` (GuidedLogitsProcessor) against pargs' own engine, on CPU.

The models of ``benchmarks/decoding.py``: policy and reward model GPT-2 style, 4 layers, d_model 256,
vocabulary 8000 (random weights: speed does not depend on training); batch 8 prompts of 16 tokens,
k = 10, responses forced to exactly N new tokens (EOS suppressed: ``min_new_tokens`` on both sides).
Both guided runs use the cached scorer (the RM's own KV cache), and must give the same tokens (checked).

- ``engine greedy`` / ``HF greedy``: plain greedy decoding, the floor of each loop;
- ``engine PARGS-G``: ``pargs.decoding.generate`` with the ``pargs-g`` preset;
- ``HF + processor``: ``policy.generate(..., logits_processor=[GuidedLogitsProcessor(...)], do_sample=False)``.

Every function runs once to warm up; then they take turns for ``--repeats`` runs each, so a busy
spell on a shared machine slows them all alike, and the median run of each is reported.

Usage: python -m benchmarks.hf_processor [--lengths 32 128] [--repeats 5] [--threads 1]
    [--out benchmarks/results/hf_processor.md]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch

from benchmarks.decoding import BATCH, D_MODEL, LAYERS, PROMPT_LEN, SEEDS, VOCAB, K, build, machine
from pargs.decoding.cached_scorer import CachedCausalScorer
from pargs.decoding.engine import encode_prompts, generate
from pargs.decoding.hf_processor import GuidedLogitsProcessor
from pargs.decoding.methods import preset

PARGS_G = preset("pargs-g", scorer="rm", k=K)
GREEDY = preset("greedy")


def methods(n: int):
    """The four decodes of n tokens, each returning its responses' token ids."""
    tokenizer, policy, rm, prompts = build()
    ids, mask = encode_prompts(tokenizer, prompts)

    def engine(method, scorer=None):
        def fn():
            g = generate(
                policy,
                tokenizer,
                prompts,
                method,
                SEEDS,
                scorer=scorer and scorer(),
                max_new_tokens=n,
                min_new_tokens=n,
            )
            return g.token_ids

        return fn

    def hf(processor=None):
        def fn():
            kw = {"do_sample": False}
            if processor is not None:
                proc = processor()
                kw = {"logits_processor": [proc.prepare(mask)], **proc.generate_kwargs()}
            with torch.no_grad():
                out = policy.generate(
                    input_ids=ids,
                    attention_mask=mask,
                    max_new_tokens=n,
                    min_new_tokens=n,
                    pad_token_id=tokenizer.pad_token_id,
                    **kw,
                )
            return out[:, ids.shape[1] :].tolist()

        return fn

    return {
        "engine greedy": engine(GREEDY),
        "HF greedy": hf(),
        "engine PARGS-G": engine(PARGS_G, lambda: CachedCausalScorer(rm)),
        "HF + processor": hf(lambda: GuidedLogitsProcessor.from_method(PARGS_G, CachedCausalScorer(rm), tokenizer)),
    }


def timed(fns: dict, repeats: int) -> tuple[dict[str, float], dict[str, list[float]], dict[str, list]]:
    """Median seconds of each function over ``repeats`` interleaved runs (after one warm-up each)."""
    outputs = {name: fn() for name, fn in fns.items()}
    seconds: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            seconds[name].append(time.perf_counter() - start)
    return {name: statistics.median(s) for name, s in seconds.items()}, seconds, outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "hf_processor.md"))
    ns = parser.parse_args()
    if ns.threads:
        torch.set_num_threads(ns.threads)

    load_before = os.getloadavg()[0]
    rows = []
    for n in ns.lengths:
        median, runs, outputs = timed(methods(n), ns.repeats)
        if outputs["HF + processor"] != outputs["engine PARGS-G"]:
            raise SystemExit(f"N={n}: HF + processor and the engine's PARGS-G gave different tokens")
        ratios = [hf / eng for hf, eng in zip(runs["HF + processor"], runs["engine PARGS-G"])]  # per round
        rows.append((n, median, statistics.median(ratios), min(ratios), max(ratios)))
        print(n, {m: round(BATCH * n / s) for m, s in median.items()}, round(statistics.median(ratios), 2), flush=True)

    load = f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    lines = [
        "# PARGS-G inside Hugging Face generate vs the engine",
        "",
        f"Machine: {machine()}; a 2-core CPU shared with other jobs while this ran (1-minute load average {load}), "
        "so absolute speeds are noisy: read the ratios, taken between runs that followed each other. Policy and RM: "
        f"GPT-2 style, {LAYERS} layers, d_model {D_MODEL}, vocabulary {VOCAB}; batch {BATCH}, k = {K}, prompts of "
        f"{PROMPT_LEN} tokens, exactly N new tokens, cached scorer on both sides. One warm-up run each, then "
        f"{ns.repeats} interleaved runs each; tokens/s of the median run. The guided runs gave identical "
        "tokens. Written by `python -m benchmarks.hf_processor`.",
        "",
        "| N new tokens | engine greedy tok/s | HF greedy tok/s | engine PARGS-G tok/s | HF + processor tok/s "
        "| HF + processor time / engine time (median of rounds; min-max) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for n, median, ratio, low, high in rows:
        tps = {m: BATCH * n / s for m, s in median.items()}
        lines.append(
            f"| {n} | {tps['engine greedy']:.0f} | {tps['HF greedy']:.0f} | {tps['engine PARGS-G']:.0f} | "
            f"{tps['HF + processor']:.0f} | {ratio:.2f}x ({low:.2f}-{high:.2f}) |"
        )
    text = "\n".join(lines) + "\n"
    Path(ns.out).parent.mkdir(parents=True, exist_ok=True)
    Path(ns.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
