"""Decoding speed on a GPU: pargs' eager and captured token loops next to Hugging Face ``generate``.

Llama-shaped models with random weights (speed does not depend on training), built on the device in
``--dtype``: ``7b`` (32 layers, hidden 4096, 32 heads, MLP 11008), ``1b`` (TinyLlama-1.1B's shape: 22
layers, hidden 2048, 32 heads, 4 key/value heads, MLP 5632), vocabulary 32000, SDPA attention; ``tiny``
(2 layers, hidden 64, vocabulary 512) checks the code on a CPU in seconds. ``--preset 7b+1b 7b+7b``
pairs the 7B policy with a 1B or a 7B reward model (one policy, built once). Prompts of 64 tokens,
exactly 128 new tokens (``min_new_tokens = max_new_tokens``, so no row stops early), batches 1, 8, 32.

Methods, each at every batch size while the time budget lasts (``--budget``; what did not fit is listed;
the order is in :func:`plan`):

- pargs ``top-k`` (k = 10) and ``PARGS`` (cached scorer, k = 10) on the ``eager`` path, and on the
  ``graphs`` (CUDA graph of the static step) and ``compiled`` (Inductor + CUDA graph) paths;
- Hugging Face ``generate``: eager (dynamic cache), and ``cache_implementation="static"``, which
  ``generate`` compiles itself on CUDA (``torch.compile``, mode ``reduce-overhead``).

Eager methods run once after a 4-token warm-up; captured ones run once to compile and capture (the
"first call" column), then ``--repeats`` times (median reported). Token agreement compares each
captured path's tokens with the eager path's for the same seeds: rows identical, and the mean share of
each row decoded before its first difference (bf16 kernels differ, and a near-tie flips a token).

Usage: python benchmarks/decoding.py --device cuda --dtype bfloat16 --preset 7b+1b 7b+7b
       python benchmarks/decoding.py --device cpu --preset tiny --paths static --budget 120   (a dry run)
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM, LlamaForSequenceClassification

from pargs.decoding import static_loop
from pargs.decoding.cached_scorer import CachedCausalScorer
from pargs.decoding.engine import encode_prompts, generate
from pargs.decoding.methods import preset
from pargs.decoding.noise import stable_seed
from pargs.tasks.word_tokenizer import build_word_tokenizer

#: model shapes: layers, hidden, heads, key/value heads, MLP width
SHAPES = {"7b": (32, 4096, 32, 32, 11008), "1b": (22, 2048, 32, 4, 5632), "tiny": (2, 64, 4, 2, 128)}
#: preset -> (policy shape, reward model shape)
PAIRS = {"7b+1b": ("7b", "1b"), "7b+7b": ("7b", "7b"), "tiny": ("tiny", "tiny")}
TARGETS = {
    ("top-k", 8): 1400,
    ("top-k", 32): 4000,
    ("pargs", 8, "7b+1b"): 1100,
    ("pargs", 8, "7b+7b"): 700,
    ("pargs", 1): 100,
}
K = 10
TOP_K = preset("top-k", top_k=K)
PARGS = preset("pargs", k=K, scorer="rm")


def config(shape: str, vocab: int, **extra) -> LlamaConfig:
    layers, hidden, heads, kv_heads, mlp = SHAPES[shape]
    return LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=mlp,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=512,
        pad_token_id=0,
        eos_token_id=2,
        bos_token_id=2,
        attn_implementation="sdpa",
        **extra,
    )


def build(cls, shape: str, vocab: int, dtype: torch.dtype, device: str, seed: int, **extra):
    """A model with random weights, made directly on ``device`` in ``dtype`` (seconds for 7B on a GPU)."""
    torch.manual_seed(seed)
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = cls(config(shape, vocab, **extra))
    finally:
        torch.set_default_dtype(default)
    return model.eval().requires_grad_(False)


class Bench:
    """The models, prompts and the running results table of one benchmark run."""

    def __init__(self, ns) -> None:
        self.ns = ns
        self.start = time.perf_counter()
        self.device, self.dtype = ns.device, getattr(torch, ns.dtype)
        vocab = 512 if all(p == "tiny" for p in ns.preset) else 32000
        self.tokenizer = build_word_tokenizer([f"w{i}" for i in range(vocab - 3)])
        t = time.perf_counter()
        self.policy = build(LlamaForCausalLM, PAIRS[ns.preset[0]][0], vocab, self.dtype, self.device, 0)
        self.rms = {
            p: build(LlamaForSequenceClassification, PAIRS[p][1], vocab, self.dtype, self.device, 1, num_labels=1)
            for p in ns.preset
        }
        self.build_seconds = time.perf_counter() - t
        g = torch.Generator().manual_seed(0)
        self.prompts = [
            " ".join(f"w{int(i)}" for i in torch.randint(0, vocab - 3, (ns.prompt_len,), generator=g))
            for _ in range(max(ns.batches))
        ]
        self.rows: list[dict] = []
        self.skipped: list[str] = []
        self.eager_tokens: dict[tuple, list[list[int]]] = {}

    def left(self) -> float:
        return self.ns.budget - (time.perf_counter() - self.start)

    def _pargs(self, method, batch: int, pair: str | None, path: str, n: int):
        seeds = torch.tensor([stable_seed("gpu-bench", i) for i in range(batch)])
        scorer = CachedCausalScorer(self.rms[pair]) if pair else None
        return generate(
            self.policy,
            self.tokenizer,
            self.prompts[:batch],
            method,
            seeds,
            scorer=scorer,
            max_new_tokens=n,
            min_new_tokens=n,
            path=path,
        )

    def _hf(self, batch: int, static: bool, n: int) -> float:
        ids, mask = encode_prompts(self.tokenizer, self.prompts[:batch])
        kwargs = {"cache_implementation": "static"} if static else {}
        start = time.perf_counter()
        out = self.policy.generate(
            input_ids=ids.to(self.device),
            attention_mask=mask.to(self.device),
            do_sample=True,
            top_k=K,
            top_p=1.0,
            temperature=1.0,
            max_new_tokens=n,
            min_new_tokens=n,
            pad_token_id=0,
            **kwargs,
        )
        out.cpu()
        return time.perf_counter() - start

    def case(self, batch: int, method: str, path: str, pair: str | None = None, need: float = 15.0) -> None:
        """Time one method at one batch size, unless less than ``need`` seconds of the budget are left."""
        label = f"batch {batch}, {pair or self.ns.preset[0].split('+')[0]}, {method}, {path}"
        if self.left() < need:
            self.skipped.append(label)
            print(json.dumps({"skipped": label}), flush=True)
            return
        n, repeats = self.ns.new_tokens, self.ns.repeats
        static_loop.release_sessions()
        if self.device == "cuda":
            torch.cuda.empty_cache()
        row = {"batch": batch, "models": pair or PAIRS[self.ns.preset[0]][0], "method": method, "path": path}
        try:
            if method == "hf generate":
                static = path == "static cache + compile"
                first = self._hf(batch, static, n if static else 4)  # static: the first call compiles
                times = [self._hf(batch, static, n) for _ in range(repeats if static else 1)]
                if static:
                    row["compile s"] = first - statistics.median(times)
            else:
                m = TOP_K if method == "top-k" else PARGS
                if path == "eager":
                    first = self._pargs(m, batch, pair, path, 4).seconds
                    gens = [self._pargs(m, batch, pair, path, n)]
                    self.eager_tokens[(batch, method, pair)] = gens[0].token_ids
                else:
                    gen = self._pargs(m, batch, pair, path, n)
                    first, row["compile s"] = gen.seconds, gen.compile_seconds
                    gens = [self._pargs(m, batch, pair, path, n) for _ in range(repeats)]
                    assert all(g.compile_seconds == 0.0 for g in gens), "a later call compiled again"
                    eager = self.eager_tokens.get((batch, method, pair))
                    if eager is not None:
                        row["agreement"] = agreement(eager, gens[0].token_ids)
                times = [g.seconds for g in gens]
            row["tok/s"] = batch * n / statistics.median(times)
            row["first call s"] = first
        except Exception as err:  # one failing method must not cost the others their numbers
            row["error"] = f"{type(err).__name__}: {err}"[:300]
        self.rows.append(row)
        print(json.dumps(row, default=str), flush=True)
        self.write()

    def write(self) -> None:
        ns = self.ns
        gpu = torch.cuda.get_device_name() if self.device == "cuda" else "CPU"
        lines = [
            "# Decoding speed on a GPU",
            "",
            f"Device: {gpu}; torch {torch.__version__}; {ns.dtype}; Llama-shaped models with random weights "
            f"(`benchmarks/decoding_gpu.py`: 7b, 1b = TinyLlama-1.1B's shape), vocabulary "
            f"{len(self.tokenizer)}, prompts of {ns.prompt_len} tokens, exactly {ns.new_tokens} new tokens, k = {K}. "
            f"Models built in {self.build_seconds:.1f} s. Written by `python benchmarks/decoding.py "
            f"--device {ns.device} --dtype {ns.dtype} --preset {' '.join(ns.preset)}`.",
            "",
            "Paths: eager = pargs' eager loop; graphs = the static step captured as a CUDA graph; compiled = the "
            "static step compiled by Inductor and captured. First call: the first full decode of that shape "
            "(compiling and capturing included; for eager methods a 4-token warm-up); compile s: the part of it spent "
            "in warm-up steps, compiling and capturing. Agreement: rows identical to the eager path's tokens / mean "
            "share of a row before its first difference.",
            "",
            "| batch | models | method | path | tok/s | first call s | compile s | agreement |",
            "|---:|---|---|---|---:|---:|---:|---|",
        ]
        for r in self.rows:
            if "error" in r:
                lines.append(
                    f"| {r['batch']} | {r['models']} | {r['method']} | {r['path']} | failed: "
                    f"{r['error'].replace('|', '/')} | | | |"
                )
                continue
            compile_s = f"{r['compile s']:.1f}" if "compile s" in r else "-"
            lines.append(
                f"| {r['batch']} | {r['models']} | {r['method']} | {r['path']} | {r['tok/s']:,.0f} | "
                f"{r['first call s']:.1f} | {compile_s} | {r.get('agreement', '-')} |"
            )
        lines += [
            "",
            "## Targets (issue 16)",
            "",
            "| what | target tok/s | best measured tok/s (path) |",
            "|---|---:|---|",
        ]
        for key, target in TARGETS.items():
            method, batch = key[0], key[1]
            pair = key[2] if len(key) > 2 else None
            hits = [
                r
                for r in self.rows
                if "tok/s" in r
                and r["method"] == method
                and r["batch"] == batch
                and r["path"] != "eager"
                and (pair is None or r["models"] == pair)
            ]
            best = max(hits, key=lambda r: r["tok/s"], default=None)
            what = f"{method}, batch {batch}" + (f", {pair}" if pair else "")
            lines.append(
                f"| {what} | {target:,} | "
                + (f"{best['tok/s']:,.0f} ({best['path']}, {best['models']})" if best else "not measured")
                + " |"
            )
        if self.skipped:
            lines += ["", f"Not run (time budget of {ns.budget:.0f} s): " + "; ".join(self.skipped) + "."]
        Path(ns.out).parent.mkdir(parents=True, exist_ok=True)
        Path(ns.out).write_text("\n".join(lines) + "\n")


def agreement(eager: list[list[int]], other: list[list[int]]) -> str:
    same = sum(a == b for a, b in zip(eager, other))
    shares = []
    for a, b in zip(eager, other):
        first_diff = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        shares.append(first_diff / max(len(a), 1))
    return f"{same}/{len(eager)} rows, {statistics.mean(shares):.0%}"


def plan(ns) -> list[tuple]:
    """The cases in the order they run, most wanted first, so a run cut short by the budget still answers the
    targets: batch 8 (eager, for agreement, and graphs), graphs at the other batch sizes, the compiled path at
    batch 8 for PARGS with the first preset's RM and for top-k (each compiles for a minute or more), Hugging
    Face's eager and compiled ``generate`` (the issue measured both already), and then the rest."""
    cheap = [p for p in ns.paths if p != "compiled"]
    first, others = (8, [b for b in ns.batches if b != 8]) if 8 in ns.batches else (ns.batches[0], ns.batches[1:])
    methods = [("top-k", None)] + [("pargs", pair) for pair in ns.preset]
    guided = methods[1:]
    cases = [(first, m, path, pair, 25 if path == "eager" else 15) for m, pair in methods for path in ["eager", *cheap]]
    cases += [(b, m, path, pair, 15) for b in others for m, pair in methods for path in cheap]
    if "compiled" in ns.paths:  # the targets' headline first: PARGS with the first preset's RM, then top-k
        cases += [(first, "pargs", "compiled", guided[0][1], 90), (first, "top-k", "compiled", None, 90)]
    cases += [(first, "hf generate", "eager", None, 15)]
    cases += [(b, "hf generate", "static cache + compile", None, 120) for b in ns.hf_compile_batches]
    if "compiled" in ns.paths:
        cases += [(first, "pargs", "compiled", pair, 90) for _, pair in guided[1:]]
        cases += [(b, m, "compiled", pair, 90) for b in others for m, pair in methods]
    cases += [(b, m, "eager", pair, 25) for b in others for m, pair in methods]
    cases += [(b, "hf generate", "eager", None, 15) for b in others]
    return cases


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--preset", nargs="+", default=["7b+1b", "7b+7b"], choices=sorted(PAIRS))
    parser.add_argument("--batches", type=int, nargs="+", default=[8, 32, 1])
    parser.add_argument("--paths", nargs="+", default=None, help="non-eager pargs paths (cuda: graphs compiled)")
    parser.add_argument("--hf-compile-batches", type=int, nargs="*", default=[8])
    parser.add_argument("--prompt-len", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--budget", type=float, default=330.0, help="seconds; cases that no longer fit are skipped")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "decoding_gpu.md"))
    ns = parser.parse_args(argv)
    if ns.paths is None:
        ns.paths = ["graphs", "compiled"] if ns.device == "cuda" else ["static"]
    if len({PAIRS[p][0] for p in ns.preset}) != 1:
        parser.error("the presets must share the policy shape")
    bench = Bench(ns)
    print(json.dumps({"built models in s": round(bench.build_seconds, 1)}), flush=True)
    for batch, method, path, pair, need in plan(ns):
        bench.case(batch, method, path, pair, need)
    bench.write()
    print(Path(ns.out).read_text())


if __name__ == "__main__":
    main()
