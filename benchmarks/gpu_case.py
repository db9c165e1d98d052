"""One case of the GPU decoding benchmark, in this process, as one JSON line on stdout (logs go to stderr).

``benchmarks/decoding_gpu.py`` (the driver) runs every case in a fresh process of its own, so that no case's
number depends on what ran before it in the same process: Inductor's compile workers, the CUDA caching
allocator's pool, captured graphs' memory, a garbage collector with more to walk, and torch.compile's state.

Models: Llama shapes with random weights, built on the device in ``--dtype`` (speed does not depend on training):
``7b`` (32 layers, hidden 4096, 32 heads, MLP 11008), ``1b`` (TinyLlama-1.1B's shape: 22 layers, hidden 2048, 32
heads, 4 key/value heads, MLP 5632), vocabulary 32000, SDPA attention; ``tiny`` (2 layers, hidden 64, vocabulary
512) checks the code on a CPU in seconds. ``7b+1b`` is a 7B policy with a 1B reward model. ``qs`` is the
quickstart's shape: GPT-2, 2 layers, hidden 128, 4 heads, its synthetic vocabulary.

Kinds of case (the first argument):

- ``pargs``: ``generate`` with top-k (k = 10) or PARGS (cached scorer, k = 10) on one path: the first call of the
  shape (compiling and capturing included), then ``--repeats`` calls (median reported); ``--profile FILE`` adds
  a torch.profiler table of one more call (kernels by device time, operators by host time, device vs wall time
  per step).
- ``hf``: Hugging Face ``generate`` (sampling, top-k 10, ``min_new_tokens = max_new_tokens``), eager (dynamic
  cache) or ``--static`` (``cache_implementation="static"``, which ``generate`` compiles itself): the first call,
  then ``--repeats`` calls; with ``--cold`` the first call is timed as the old benchmark did (the caching
  allocator emptied, then a 4-token warm-up, then the call: its only timed one).
- ``small``: the quickstart's regime (``qs`` models, 16 rows, 32 new tokens): top-k and PARGS on every path of
  ``--paths`` in this one process, as a ``pargs predict`` process runs them: first and later calls.
- ``agree``: token agreement between paths (:mod:`benchmarks.gpu_agreement`).

Every case also times a tiny kernel's launch (microseconds, at its start and its end) and reads the host's load
average: eager decoding is bound by launches, so these say whether the host was slow while the case ran. It
reports how long importing torch and transformers took (``imports s``); with ``--wait`` it then waits for a line
on stdin, so that the driver can start it while the case before runs. It leaves with ``os._exit`` once its line
is printed (no interpreter or CUDA teardown on the run's clock).

Usage: python benchmarks/gpu_case.py pargs --models 7b+1b --method pargs --batch 8 --path graphs
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

STARTED = time.time()  # before torch and transformers: a case's process reports how long their imports took

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: the checkout's root

from transformers import (  # noqa: E402
    GPT2Config,
    GPT2ForSequenceClassification,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    LlamaForSequenceClassification,
)

from pargs.decoding import static_loop  # noqa: E402
from pargs.decoding.cached_scorer import CachedCausalScorer  # noqa: E402
from pargs.decoding.engine import encode_prompts, generate  # noqa: E402
from pargs.decoding.methods import preset  # noqa: E402
from pargs.decoding.noise import stable_seed  # noqa: E402
from pargs.tasks.word_tokenizer import build_word_tokenizer  # noqa: E402

#: Llama shapes: layers, hidden, heads, key/value heads, MLP width
SHAPES = {"7b": (32, 4096, 32, 32, 11008), "1b": (22, 2048, 32, 4, 5632), "tiny": (2, 64, 4, 2, 128)}
K = 10
METHODS = {"top-k": preset("top-k", top_k=K), "pargs": preset("pargs", k=K, scorer="rm")}


def llama_config(shape: str, vocab: int, **extra) -> LlamaConfig:
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


def qs_config(vocab: int, **extra) -> GPT2Config:
    """The quickstart's model shape (lightning_configs/quickstart/sft.yaml)."""
    return GPT2Config(
        n_layer=2,
        n_embd=128,
        n_head=4,
        n_positions=64,
        vocab_size=vocab,
        pad_token_id=0,
        eos_token_id=2,
        bos_token_id=2,
        **extra,
    )


def build(cls, config, dtype: torch.dtype, device: str, seed: int):
    """A model with random weights, made directly on ``device`` in ``dtype`` (seconds for 7B on a GPU)."""
    torch.manual_seed(seed)
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = cls(config)
    finally:
        torch.set_default_dtype(default)
    return model.eval().requires_grad_(False)


class Setup:
    """The models, tokenizer and prompts of a case."""

    def __init__(self, ns) -> None:
        self.ns = ns
        self.device, self.dtype = ns.device, getattr(torch, ns.dtype)
        policy, _, rm = ns.models.partition("+")
        start = time.perf_counter()
        if policy == "qs":
            from pargs.tasks.synthetic import vocabulary

            self.tokenizer = build_word_tokenizer(vocabulary())
            vocab = len(self.tokenizer)
            self.policy = build(GPT2LMHeadModel, qs_config(vocab), self.dtype, self.device, 0)
            self.rm = build(GPT2ForSequenceClassification, qs_config(vocab, num_labels=1), self.dtype, self.device, 1)
        else:
            vocab = 512 if policy == "tiny" else 32000
            self.tokenizer = build_word_tokenizer([f"w{i}" for i in range(vocab - 3)])
            self.policy = build(LlamaForCausalLM, llama_config(policy, vocab), self.dtype, self.device, 0)
            self.rm = None
            if rm:
                config = llama_config(rm, vocab, num_labels=1)
                self.rm = build(LlamaForSequenceClassification, config, self.dtype, self.device, 1)
        self.build_seconds = time.perf_counter() - start
        words = [w for w in self.tokenizer.get_vocab() if w not in self.tokenizer.all_special_tokens]
        g = torch.Generator().manual_seed(0)
        self.prompts = [
            " ".join(words[int(i)] for i in torch.randint(0, len(words), (ns.prompt_len,), generator=g))
            for _ in range(ns.batch)
        ]
        self.seeds = torch.tensor([stable_seed("gpu-bench", i) for i in range(ns.batch)])

    def pargs(self, method: str, path: str, n: int, **kw):
        """One ``generate`` call of the batch: ``n`` new tokens exactly."""
        scorer = CachedCausalScorer(self.rm) if method == "pargs" else None
        return generate(
            self.policy,
            self.tokenizer,
            self.prompts,
            METHODS[method],
            self.seeds,
            scorer=scorer,
            max_new_tokens=n,
            min_new_tokens=n,
            path=path,
            **kw,
        )


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def launch_us(device: str, n: int = 2000) -> float | None:
    """Microseconds per launch of a one-element kernel (host-bound): how fast this host issues kernels now."""
    if device != "cuda":
        return None
    x = torch.zeros(1, device=device)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(n):
        x.add_(1)
    torch.cuda.synchronize()
    return round((time.perf_counter() - start) / n * 1e6, 2)


def profile(call, steps: int, out: str, device: str) -> dict:
    """One more call under torch.profiler; writes its tables to ``out``, returns per-step wall and device ms."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    with torch_profile(activities=activities) as prof:
        start = time.perf_counter()
        call()
        sync(device)
        wall = time.perf_counter() - start
    events = prof.key_averages()
    device_us = sum(e.self_device_time_total for e in events)
    summary = {"profiled wall ms/step": wall / steps * 1e3, "profiled device ms/step": device_us / 1e3 / steps}
    lines = [
        f"one call of {steps} steps (prefill included): wall {wall * 1e3:.1f} ms, kernels {device_us / 1e3:.1f} ms; "
        f"per step: wall {summary['profiled wall ms/step']:.3f} ms, device {summary['profiled device ms/step']:.3f} ms",
        "",
        "## by device time (kernels)",
        events.table(sort_by="self_device_time_total" if device == "cuda" else "self_cpu_time_total", row_limit=35),
        "## by host time (operators, CUDA runtime calls)",
        events.table(sort_by="self_cpu_time_total", row_limit=35),
    ]
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text("\n".join(lines) + "\n")
    return {k: round(v, 3) for k, v in summary.items()}


def pargs_case(ns, setup: Setup) -> dict:
    n, batch = ns.new_tokens, ns.batch
    first = setup.pargs(ns.method, ns.path, n)
    later = [setup.pargs(ns.method, ns.path, n) for _ in range(ns.repeats)]
    seconds = [g.seconds for g in later]
    row = {
        "path": first.path,
        "new tokens": n,
        "tok/s": batch * n / statistics.median(seconds),
        "first call s": first.seconds,
        "capture s": first.compile_seconds,
        "later capture s": max((g.compile_seconds for g in later), default=0.0),
        "calls s": [round(s, 4) for s in seconds],
        "same tokens later": all(g.token_ids == first.token_ids for g in later),
    }
    if ns.profile:
        try:  # the timings above stand even if the profiler fails
            row.update(profile(lambda: setup.pargs(ns.method, ns.path, n), n, ns.profile, ns.device))
        except Exception as err:
            row["profile error"] = f"{type(err).__name__}: {err}"[:300]
    return row


def hf_case(ns, setup: Setup) -> dict:
    policy, n = setup.policy, ns.new_tokens
    ids, mask = encode_prompts(setup.tokenizer, setup.prompts)
    ids, mask = ids.to(ns.device), mask.to(ns.device)
    extra = {"cache_implementation": "static"} if ns.static else {}

    def call(tokens: int) -> float:
        start = time.perf_counter()
        out = policy.generate(
            input_ids=ids,
            attention_mask=mask,
            do_sample=True,
            top_k=K,
            max_new_tokens=tokens,
            min_new_tokens=tokens,
            pad_token_id=0,
            **extra,
        )
        out.cpu()
        return time.perf_counter() - start

    row = {}
    if ns.cold:  # the old benchmark's sequence: allocator emptied, a 4-token warm-up, then the timed call
        if ns.device == "cuda":
            torch.cuda.empty_cache()
        row["warm-up s"] = call(4)
    first = call(n)
    if ns.cold:
        row["cold tok/s"] = ns.batch * n / first
    seconds = [call(n) for _ in range(ns.repeats)]
    row.update(
        {"new tokens": n, "tok/s": ns.batch * n / statistics.median(seconds), "first call s": first, "calls s": seconds}
    )
    return row


def small_case(ns, setup: Setup) -> dict:
    """Every method on every path of ``--paths`` in this one process, as ``pargs predict`` would: the first call of
    each, then ``repeats`` calls; eager first, compiled last (Inductor's compile workers stay behind once
    started)."""
    paths = ns.paths.split(",")
    if ns.device != "cuda":
        paths = ["static" if p == "graphs" else p for p in paths]
    row = {"new tokens": ns.new_tokens}
    for path in paths:
        for method in METHODS:
            first = setup.pargs(method, path, ns.new_tokens)
            later = [setup.pargs(method, path, ns.new_tokens).seconds for _ in range(ns.repeats)]
            row[f"{method} {path}"] = {
                "first call s": round(first.seconds, 4),
                "capture s": round(first.compile_seconds, 4),
                "call s": round(statistics.median(later), 5),
            }
    return row


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=["pargs", "hf", "small", "agree"])
    parser.add_argument("--models", default="7b", help="policy[+reward model]: 7b, 7b+1b, 7b+7b, 1b, tiny, qs+qs")
    parser.add_argument("--method", default="top-k", choices=sorted(METHODS))
    parser.add_argument("--path", default="graphs")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--prompt-len", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--static", action="store_true", help="hf: cache_implementation='static' (compiled)")
    parser.add_argument("--cold", action="store_true", help="hf: first time the old benchmark's sequence")
    parser.add_argument("--profile", help="pargs: write a torch.profiler table of one more call here")
    parser.add_argument("--label", default="", help="the case's name in the results")
    parser.add_argument("--paths", default="eager,graphs,compiled", help="small: the paths to run, in this order")
    parser.add_argument("--compile-backend", default=static_loop.COMPILE_BACKEND, help="the compiled path's backend")
    parser.add_argument(
        "--wait",
        action="store_true",
        help="after the imports, wait for a line on stdin before starting (the driver "
        "starts the next case's process while this one runs, so that its imports cost no time of the run)",
    )
    ns = parser.parse_args(argv)
    imported = time.time() - STARTED
    static_loop.COMPILE_BACKEND = ns.compile_backend
    if ns.wait:
        sys.stdin.readline()
    start = time.perf_counter()
    import transformers

    gpu = torch.cuda.get_device_name() if ns.device == "cuda" else "CPU"
    row = {
        "case": ns.label or " ".join(sys.argv[1:] if argv is None else argv),
        "kind": ns.kind,
        "versions": f"{gpu}, torch {torch.__version__}, transformers {transformers.__version__}",
        "imports s": round(imported, 2),
    }
    try:
        if ns.kind == "agree":
            from benchmarks.gpu_agreement import agreement_case

            row.update(agreement_case(ns))
        else:
            setup = Setup(ns)
            row.update({"build s": round(setup.build_seconds, 2), "launch us": [launch_us(ns.device)]})
            row["load average"] = [os.getloadavg()[0]]
            case = {"pargs": pargs_case, "hf": hf_case, "small": small_case}[ns.kind]
            row.update(case(ns, setup))
            row["launch us"].append(launch_us(ns.device))
            row["load average"].append(os.getloadavg()[0])
    except Exception as err:  # the driver records the failure and goes on with the next case
        row["error"] = f"{type(err).__name__}: {err}"[:400]
        import traceback

        traceback.print_exc()
    row["process s"] = round(time.perf_counter() - start, 2)
    if "torch._inductor.async_compile" in sys.modules:  # its compile workers must not outlive the case
        from torch._inductor.async_compile import shutdown_compile_workers

        shutdown_compile_workers()
    if ns.device == "cuda":
        row["peak GiB"] = round(torch.cuda.max_memory_allocated() / 2**30, 1)
    static_loop.release_sessions()
    print(json.dumps(row, default=str), flush=True)


if __name__ == "__main__":
    main()
    sys.stderr.flush()
    os._exit(0)  # the result is out: no interpreter and CUDA teardown on the run's clock
