"""Decoding speed: plain top-k sampling vs PARGS (cached and general scorers) vs an official-style loop.

Policy and reward model are GPT-2 style, 4 layers, d_model 256, vocabulary 8000 (random weights:
speed does not depend on training). Batch 8 prompts of 16 tokens, k = 10, responses forced to
exactly N new tokens (EOS suppressed) for N in 32 / 128 / 256. Every method runs in this one
process, side by side. Top-k and cached PARGS run once to warm up, then take turns for
``--repeats`` runs each, and report the median (they are short); the two slow paths run once,
without a warm-up (they are long, which averages out noise and one-time costs). The median, not
the best run, so the short runs are not favoured over the single long ones.

- ``top-k``: plain top-k sampling of the policy (the floor every guided method pays).
- ``pargs-cached``: PARGS with the reward model's own KV cache, k candidates per step in one chunk.
- ``pargs-general``: PARGS through the general text path (decode each candidate, re-encode, score).
- ``official-style``: written here, in the style of the reference implementations: one prompt at a
  time, and at each step the k candidate sequences are scored by the reward model from scratch.

A breakdown times the parts of a decoding step (policy forward, RM chunk forward, candidate move,
the rest) next to the RM chunk's matrix products alone, a floor for its forward.

Memory per extra candidate is measured from the reward model's KV cache while decoding 256 tokens with
k = 1, 10 and 20 (slope per candidate), next to the analytic size of one candidate's keys and values.

Usage: python benchmarks/decoding.py [--lengths 32 128 256] [--repeats 5] [--out benchmarks/results/decoding.md]

With ``--device`` or ``--plan`` it runs the GPU benchmark instead (``benchmarks/decoding_gpu.py``: 7B-shaped
Llama models, pargs' eager and captured paths next to Hugging Face ``generate``, every case in its own process).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from transformers import GPT2Config, GPT2ForSequenceClassification, GPT2LMHeadModel

from pargs.decoding.cached_scorer import CachedCausalScorer
from pargs.decoding.engine import encode_prompts, generate
from pargs.decoding.methods import preset
from pargs.decoding.noise import stable_seed
from pargs.decoding.stream import CausalStream
from pargs.decoding.text_reward import ModelReward
from pargs.decoding.text_scorer import TextScorer
from pargs.models.reward_model import sequence_rewards
from pargs.tasks.word_tokenizer import build_word_tokenizer

VOCAB, LAYERS, D_MODEL, BATCH, K, PROMPT_LEN = 8000, 4, 256, 8, 10, 16
TOP_K = preset("top-k", top_k=K)
PARGS = preset("pargs", k=K, scorer="rm")
SEEDS = torch.tensor([stable_seed("bench", i) for i in range(BATCH)])


def build(seed: int = 0):
    tokenizer = build_word_tokenizer([f"w{i}" for i in range(VOCAB - 3)])
    cfg = GPT2Config(
        n_layer=LAYERS,
        n_embd=D_MODEL,
        n_head=4,
        n_positions=PROMPT_LEN + 300,
        vocab_size=len(tokenizer),
        pad_token_id=0,
        eos_token_id=2,
        bos_token_id=2,
        num_labels=1,
    )
    torch.manual_seed(seed)
    policy = GPT2LMHeadModel(cfg).eval()
    rm = GPT2ForSequenceClassification(cfg).eval()
    g = torch.Generator().manual_seed(seed)
    prompts = [
        " ".join(f"w{int(i)}" for i in torch.randint(0, VOCAB - 3, (PROMPT_LEN,), generator=g)) for _ in range(BATCH)
    ]
    return tokenizer, policy, rm, prompts


@torch.no_grad()
def official_style(policy, rm, tokenizer, prompts, n_new: int, k: int, beta: float = 1.5) -> int:
    """One prompt at a time; each step scores the k candidate sequences with the RM from scratch."""
    produced = 0
    for prompt in prompts:
        ids, _ = encode_prompts(tokenizer, [prompt])
        out = policy(input_ids=ids, use_cache=True)
        cache, logits, seq = out.cache, out.logits[:, -1], ids
        for _ in range(n_new):
            logits[:, tokenizer.eos_token_id] = float("-inf")
            lp, cand = torch.log_softmax(logits.float(), -1).topk(k)
            candidates = torch.cat([seq.expand(k, -1), cand.view(k, 1)], dim=1)
            r = sequence_rewards(rm, candidates, torch.ones_like(candidates))
            token = cand[0, int((lp[0] + beta * r).argmax())].view(1, 1)
            seq = torch.cat([seq, token], dim=1)
            out = policy(input_ids=token, cache=cache, use_cache=True)
            cache, logits = out.cache, out.logits[:, -1]
            produced += 1
    return produced


def timed(fns: dict, repeats: int, warm_up: bool = True) -> dict[str, tuple[float, int]]:
    """Median seconds of ``repeats`` runs of each function, and the tokens one run produced.

    Every function first runs once to warm up (unless ``warm_up`` is False); then the functions take
    turns, so a machine that is busier for a while slows them all alike instead of whichever happened
    to be running.
    """
    for fn in fns.values() if warm_up else ():
        fn()
    seconds, tokens = {name: [] for name in fns}, {}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            tokens[name] = fn()
            seconds[name].append(time.perf_counter() - start)
    return {name: (statistics.median(seconds[name]), tokens[name]) for name in fns}


def run_methods(lengths, repeats, general_max):
    tokenizer, policy, rm, prompts = build()

    def engine(method, scorer_factory, n):
        def fn():
            g = generate(
                policy, tokenizer, prompts, method, SEEDS, scorer=scorer_factory(), max_new_tokens=n, min_new_tokens=n
            )
            return sum(g.num_tokens)

        return fn

    rows = []
    for n in lengths:
        row = {"tokens": n}
        row.update(
            timed(
                {
                    "top-k": engine(TOP_K, lambda: None, n),
                    "pargs-cached": engine(PARGS, lambda: CachedCausalScorer(rm), n),
                },
                repeats,
            )
        )
        if n <= general_max:  # the long runs: one each, no warm-up (one-time costs vanish in 30 s or more)
            row.update(
                timed(
                    {"pargs-general": engine(PARGS, lambda: TextScorer(ModelReward(rm, tokenizer), tokenizer), n)},
                    1,
                    warm_up=False,
                )
            )
        row.update(
            timed(
                {"official-style": lambda n=n: official_style(policy, rm, tokenizer, prompts, n, K)}, 1, warm_up=False
            )
        )
        rows.append(row)
        print(
            json.dumps({m: (round(v[1] / v[0], 1) if isinstance(v, tuple) else v) for m, v in row.items()}), flush=True
        )
    return rows


def peak_cache_mb(k: int, n: int) -> tuple[float, float]:
    """Largest reward-model KV cache during a PARGS decode of n tokens at this k: (filled MB, allocated MB).

    Read right after each k-candidate chunk, when the cache is fullest. "Filled" counts the slots in
    use (prefix + k candidates); "allocated" the buffers, spare slots included.
    (Peak RSS is no use here: the allocator reuses memory freed while the models were built.)
    """
    tokenizer, policy, rm, prompts = build()
    scorer = CachedCausalScorer(rm)
    filled = allocated = 0
    try_candidates = scorer.stream.try_candidates

    def measured(candidates):
        nonlocal filled, allocated
        out = try_candidates(candidates)
        layers = scorer.stream.cache.layers
        filled = max(filled, sum(t.numel() * t.element_size() for layer in layers for t in (layer.keys, layer.values)))
        allocated = max(allocated, sum(layer.allocated_bytes() for layer in layers))
        return out

    scorer.stream.try_candidates = measured
    method = preset("pargs", k=k, scorer="rm")
    generate(policy, tokenizer, prompts, method, torch.arange(BATCH), scorer=scorer, max_new_tokens=n, min_new_tokens=n)
    return filled / 2**20, allocated / 2**20


#: the CausalStream methods timed by step_breakdown, and what they are in a decode
PARTS = {"append": "policy forward", "try_candidates": "RM chunk forward", "keep_candidate": "keep candidate"}


def step_breakdown(n: int, repeats: int) -> dict[str, dict[str, float]]:
    """Milliseconds per step in each part of a top-k and a cached PARGS decode of n tokens.

    CausalStream's methods get timers for this measurement only. "rest" is everything else: the
    prefills, log-softmax and top-k over the vocabulary, sampling, stopping checks. The two methods
    take turns after a warm-up round; each reports the run with the median total.
    """
    tokenizer, policy, rm, prompts = build()
    methods = {"top-k": (TOP_K, lambda: None), "pargs-cached": (PARGS, lambda: CachedCausalScorer(rm))}
    spent: dict[str, float] = {}
    originals = {name: getattr(CausalStream, name) for name in PARTS}

    def timer(name, fn):
        def call(*args, **kwargs):
            start = time.perf_counter()
            out = fn(*args, **kwargs)
            spent[name] = spent.get(name, 0.0) + time.perf_counter() - start
            return out

        return call

    runs: dict[str, list[dict[str, float]]] = {m: [] for m in methods}
    try:
        for name, fn in originals.items():
            setattr(CausalStream, name, timer(name, fn))
        for round_ in range(repeats + 1):
            for m, (method, scorer) in methods.items():
                spent.clear()
                start = time.perf_counter()
                generate(policy, tokenizer, prompts, method, SEEDS, scorer=scorer(), max_new_tokens=n, min_new_tokens=n)
                if round_:
                    runs[m].append({**spent, "total": time.perf_counter() - start})
    finally:
        for name, fn in originals.items():
            setattr(CausalStream, name, fn)
    result = {}
    for m, timings in runs.items():
        run = sorted(timings, key=lambda r: r["total"])[len(timings) // 2]
        parts = {label: run.get(name, 0.0) for name, label in PARTS.items()}
        parts["rest"] = run["total"] - sum(parts.values())
        parts["total"] = run["total"]
        result[m] = {label: seconds / n * 1e3 for label, seconds in parts.items()}
    return result


def rm_matmul_floor(repeats: int = 200) -> tuple[float, float]:
    """(ms, GFLOP/s) of the RM chunk's matrix products alone: each block's four Conv1D products on B*k rows.

    Nothing else runs and the weights stay hot in cache, so this is a floor for the chunk forward.
    """
    _, _, rm, _ = build()
    x, h = torch.randn(BATCH * K, D_MODEL), torch.randn(BATCH * K, 4 * D_MODEL)
    convs = [
        (conv, h if conv is block.mlp.c_proj else x)
        for block in rm.transformer.h
        for conv in (block.attn.c_attn, block.attn.c_proj, block.mlp.c_fc, block.mlp.c_proj)
    ]
    flops = sum(2 * inp.shape[0] * conv.weight.numel() for conv, inp in convs)
    with torch.no_grad():
        for _ in range(2):
            start = time.perf_counter()
            for _ in range(repeats):
                for conv, inp in convs:
                    torch.addmm(conv.bias, inp, conv.weight)
            seconds = (time.perf_counter() - start) / repeats
    return seconds * 1e3, flops / seconds / 1e9


def compare_paths(n: int, repeats: int, paths: list[str]) -> dict[tuple[str, str], dict[str, float]]:
    """Top-k and cached PARGS on each token loop (``generate``'s ``path``), in this one process.

    Each (method, path) first runs once: for ``compiled`` that call compiles the step (its time is the
    "first call"). Then ``repeats`` rounds, each running every (method, path) once, the paths' order turning
    from round to round; medians of tokens per second of wall time and of this process's CPU time (with one
    thread, CPU time is less disturbed by other processes on a shared machine).
    """
    tokenizer, policy, rm, prompts = build()
    methods = {"top-k": (TOP_K, lambda: None), "pargs-cached": (PARGS, lambda: CachedCausalScorer(rm))}

    def run(method, scorer, path):
        wall, cpu = time.perf_counter(), time.process_time()
        gen = generate(
            policy, tokenizer, prompts, method, SEEDS, scorer=scorer(), max_new_tokens=n, min_new_tokens=n, path=path
        )
        return gen, time.perf_counter() - wall, time.process_time() - cpu

    first, tokens, samples = {}, {}, {}
    for name, (method, scorer) in methods.items():
        for path in paths:
            gen, wall, _ = run(method, scorer, path)
            first[name, path], tokens[name, path] = (wall, gen.compile_seconds), gen.token_ids
    for r in range(repeats):
        for name, (method, scorer) in methods.items():
            for path in paths[r % len(paths) :] + paths[: r % len(paths)]:
                gen, wall, cpu = run(method, scorer, path)
                samples.setdefault((name, path), []).append((sum(gen.num_tokens) / wall, sum(gen.num_tokens) / cpu))
    return {
        key: {
            "wall": statistics.median(w for w, _ in runs),
            "cpu": statistics.median(c for _, c in runs),
            "first": first[key][0],
            "compile": first[key][1],
            "same tokens": tokens[key] == tokens[key[0], paths[0]],
        }
        for key, runs in samples.items()
    }


def paths_section(n: int, repeats: int, paths: list[str]) -> list[str]:
    """The results of :func:`compare_paths` as a section of the results file."""
    result = compare_paths(n, repeats, paths)
    lines = [
        f"## Token loops ({n} new tokens; `generate(path=...)`)",
        "",
        "eager: the growing caches (the default on CPU); static: the fixed-shape step over preallocated caches, "
        "run as it is; compiled: that step compiled by `torch.compile` (Inductor). Each runs once first (compiled: "
        f"the call that compiles), then all take turns for {repeats} rounds (median). CPU time: tokens per second "
        "of this process's CPU time (one thread, so less disturbed by the shared machine's other load). Written "
        f"by `python benchmarks/decoding.py --only paths --lengths {n} --repeats {repeats}`.",
        "",
        "| method | path | tok/s | tok/s of CPU time | CPU time vs eager | first call s | of it compiling s "
        "| tokens as eager |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for (name, path), r in result.items():
        eager = result[name, paths[0]]["cpu"]
        lines.append(
            f"| {name} | {path} | {r['wall']:.0f} | {r['cpu']:.0f} | {eager / r['cpu']:.2f}x | "
            f"{r['first']:.1f} | {r['compile']:.1f} | {'yes' if r['same tokens'] else 'no'} |"
        )
    return lines


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {torch.get_num_threads()} threads, torch {torch.__version__}, Python {platform.python_version()}"


def main() -> None:
    if any(a.split("=")[0] in ("--device", "--plan") for a in sys.argv[1:]):
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: the checkout's root
        from benchmarks.decoding_gpu import main as gpu_main

        return gpu_main(sys.argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[32, 128, 256])
    parser.add_argument("--repeats", type=int, default=5, help="runs of top-k and cached PARGS")
    parser.add_argument("--general-max", type=int, default=256, help="longest length to run the general path at")
    parser.add_argument(
        "--paths",
        nargs="+",
        default=["eager", "static", "compiled"],
        help="token loops to compare (the first is the reference)",
    )
    parser.add_argument("--only", choices=["paths"], help="run only this section and replace it in --out")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "decoding.md"))
    ns = parser.parse_args()
    n_split = 128 if 128 in ns.lengths else max(ns.lengths)
    if ns.only == "paths":
        section = paths_section(n_split, ns.repeats, ns.paths)
        old = Path(ns.out).read_text().split("\n") if Path(ns.out).exists() else ["# Decoding speed", ""]
        start = next((i for i, line in enumerate(old) if line.startswith("## Token loops")), len(old))
        end = next((i for i in range(start + 1, len(old)) if old[i].startswith("## ")), len(old))
        text = "\n".join([*old[:start], *section, "", *old[end:]]).rstrip("\n") + "\n"
        Path(ns.out).write_text(text)
        print("\n".join(section))
        return

    rows = run_methods(ns.lengths, ns.repeats, ns.general_max)
    lines = [
        "# Decoding speed",
        "",
        f"Machine: {machine()}. Policy and RM: GPT-2 style, {LAYERS} layers, d_model {D_MODEL}, vocabulary {VOCAB}; "
        f"batch {BATCH}, k = {K}, prompts of {PROMPT_LEN} tokens, exactly N new tokens. Top-k and "
        f"cached PARGS run once to warm up, then take turns for {ns.repeats} runs each (median reported); the "
        "general path and official-style run once, without a warm-up. Written by `python benchmarks/decoding.py`.",
        "",
        "| N new tokens | top-k tok/s | PARGS cached tok/s | PARGS general tok/s | official-style tok/s "
        "| cached / official | top-k / cached (slowdown) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        tps = {m: v[1] / v[0] for m, v in row.items() if isinstance(v, tuple)}
        general = f"{tps['pargs-general']:.1f}" if "pargs-general" in tps else "-"
        lines.append(
            f"| {row['tokens']} | {tps['top-k']:.0f} | {tps['pargs-cached']:.0f} | {general} | "
            f"{tps['official-style']:.1f} | {tps['pargs-cached'] / tps['official-style']:.1f}x | "
            f"{tps['top-k'] / tps['pargs-cached']:.2f}x |"
        )
    split = step_breakdown(n_split, ns.repeats)
    floor_ms, floor_gflops = rm_matmul_floor()
    columns = [*PARTS.values(), "rest", "total"]
    lines += [
        "",
        f"## Where a step's time goes ({n_split} new tokens)",
        "",
        "Milliseconds per decoding step (one token for each of the batch's rows), from timers around the stream's "
        "policy forward, reward-model chunk forward and candidate move; rest = prefills, log-softmax and top-k over "
        "the vocabulary, sampling, stopping checks.",
        "",
        "| method | " + " | ".join(columns) + " |",
        "|---|" + "---:|" * len(columns),
        *(f"| {m} | " + " | ".join(f"{parts[c]:.2f}" for c in columns) + " |" for m, parts in split.items()),
        "",
        f"The RM chunk's matrix products alone ({4 * LAYERS} Conv1D products on {BATCH * K} rows, nothing else "
        f"running, weights hot in cache) take {floor_ms:.2f} ms ({floor_gflops:.0f} GFLOP/s); the chunk forward "
        f"takes {split['pargs-cached']['RM chunk forward'] / floor_ms:.2f}x that. The difference is attention, the "
        "GELU, layer norms and per-operation framework overhead.",
    ]
    n_mem = max(ns.lengths)
    peak = {k: peak_cache_mb(k, n_mem) for k in (1, 10, 20)}
    slope = (peak[20][0] - peak[1][0]) / 19
    kv_bytes = BATCH * LAYERS * 2 * D_MODEL * 4
    lines += [
        "",
        "## Memory per extra candidate",
        "",
        f"Largest reward-model KV cache while decoding {n_mem} tokens with PARGS (cached scorer), batch {BATCH}, "
        "as slots filled / buffers allocated: "
        + ", ".join(f"k = {k}: {f:.2f} / {a:.2f} MB" for k, (f, a) in peak.items())
        + f". Each extra candidate fills {slope * 1024:.0f} KB, one token's keys and values per layer for the batch "
        f"({kv_bytes / 1024:.0f} KB in float32), for one step only: once the chosen candidate is kept, the k - 1 "
        "other slots return to the buffer's spare room (reused by the next step, not freed). The buffers grow in "
        "steps of 64 slots or an eighth of the length, whichever is more, so the allocated size moves in those "
        "steps rather than per candidate. Per step, the chunk's hidden states are k tokens per row; its attention "
        "scores and mask are k x (length + k) per row and head, so they do grow with the length.",
    ]
    lines += ["", *paths_section(n_split, ns.repeats, ns.paths)]
    text = "\n".join(lines) + "\n"
    Path(ns.out).parent.mkdir(parents=True, exist_ok=True)
    Path(ns.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
