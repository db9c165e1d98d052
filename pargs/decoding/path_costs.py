"""What ``auto`` expects each token loop to cost on CUDA, from measurements, and the cheapest loop for a run.

``generate(path="auto")`` on CUDA (:func:`pargs.decoding.engine.auto_path`) estimates the seconds that the calls
of one shape (one method, one bucket of rows) will take on each token loop and takes the cheapest:

    eager     calls x steps x eager step
    graphs    capture + calls x steps x graphs step
    compiled  compile + calls x steps x compiled step

with ``steps = max_new_tokens`` (the static path runs every step; the eager loop may stop earlier) and

- eager step = max(:data:`EAGER_STEP_SECONDS` + :data:`EAGER_LAYER_STEP_SECONDS` x layers, graphs step): the
  host issues every kernel of a step one by one (the masking, the rule's step, whose counter-based noise alone is
  ~90 small kernels, the stop check's copy to the host, the models' layers), so small models cost a fixed
  per-step overhead plus their layers, and a large batch cannot make it faster than the device's work;
- graphs step = weight bytes / :data:`WEIGHT_BYTES_PER_SECOND` + :data:`GRAPHS_STEP_SECONDS` +
  :data:`GRAPHS_LAYER_STEP_SECONDS` x layers: the weights read once per step by the matrix products, plus the
  small kernels (norms, rotary embeddings, residuals, masking, sampling) replayed without launches;
- compiled step = graphs step - :data:`COMPILED_LAYER_STEP_SAVING` x layers (Inductor fuses the small kernels),
  never below the weights' read;
- capture = :data:`CAPTURE_SECONDS`, compile = :data:`COMPILE_SECONDS` + :data:`COMPILE_LAYER_SECONDS` x layers,
  paid once per shape (a process keeps its captured and compiled steps, ``pargs/decoding/static_loop.py``).

``layers`` and weight bytes count the policy, plus the reward model for a rule that runs it every step (guided
rules; not Best-of-N, which scores whole responses once). The batch is left out: at these sizes it hardly changes
a step's time (7B top-k on graphs: 7.95 ms per step at 8 rows, 9.35 ms at 32).

Where the constants come from: the H200 run of 2026-12-04 (``benchmarks/results/decoding_gpu.md``: Llama shapes
in bf16, 64-token prompts, 128 new tokens, k = 10, every case in a fresh process; its torch.profiler tables and
the quickstart's log on the same machine). Each constant names its numbers. Re-measure with
``benchmarks/gpu_last.sh`` (the ``small`` case is the quickstart's regime) and change them here.

So the quickstart on a GPU (2-layer models, 70 calls of 16 rows x 32 steps per method with 10 samples) runs
``graphs``; a single call (``generate`` outside ``pargs predict``, where the run's size is unknown and ``calls``
is 1) compiles only where its own steps repay it (some 10,000 new tokens); a 7B top-k run compiles once it has
about 100 calls of 128 tokens per shape (33 s of compiling, 2.45 ms saved per step).
"""

from __future__ import annotations

#: fixed seconds of an eager step on CUDA, apart from its layers, and ...
EAGER_STEP_SECONDS = 0.8e-3
#: ... seconds per transformer layer it runs. Measured in the quickstart's regime (run 2 of 2026-12-04, the
#: ``small`` case: 16 rows, 32 new tokens): top-k with a 2-layer GPT-2 2.79 ms a step, PARGS with a 2-layer policy
#: and a 2-layer RM 4.77 ms, so 0.81 ms + 0.99 ms per layer; it agrees with 7B eager decoding at batch 8 (32
#: layers: 29 ms a step for Hugging Face ``generate``, 276 tok/s; 33 ms for pargs a week earlier): 0.8 + 32 x 1.0
#: = 32.8 ms. (Run 1's estimate from the quickstart's table, 1.7 + 0.9 per layer, counted stopped rows' steps.)
EAGER_LAYER_STEP_SECONDS = 1.0e-3

#: bytes of weights a captured step reads per second in its matrix products: the GEMM kernels of the graphs
#: path's profile (top-k 7B, batch 8: ~4.15 ms per step for the 13.5 GB of bf16 weights)
WEIGHT_BYTES_PER_SECOND = 3.25e12
#: fixed seconds of a captured step besides the weights' read (masking, sampling over the vocabulary): the
#: quickstart's regime on graphs (run 2) took 0.388 ms a step for top-k (2 layers) and 0.602 ms for PARGS (4), so
#: 0.15 ms and 0.12 ms besides the layers; and ...
GRAPHS_STEP_SECONDS = 1.5e-4
#: ... seconds per layer (norms, rotary embeddings, attention, residuals, cache writes): the graphs top-k 7B step
#: took 7.95 ms at batch 8 (1.018 s per call of 128 tokens), 4.15 ms of it the weights, ~3.8 ms over 32 layers.
#: The model then gives 8.3 ms (measured 7.95), PARGS 7B + 1B RM 11.6 ms (12.3), 7B + 7B 16.3 ms (16.7).
GRAPHS_LAYER_STEP_SECONDS = 1.2e-4
#: seconds per layer and step that compiling saves over graphs: top-k 7B at batch 8 compiled took 0.705 s per call
#: of 128 tokens against graphs' 1.018 s, 2.45 ms a step over 32 layers
COMPILED_LAYER_STEP_SAVING = 7.7e-5

#: seconds a shape's first call on graphs costs more than its later ones (warm-up, capture, synchronising): 0.49 to
#: 1.33 s at 7B (batch 8 and 32, top-k and PARGS), 0.06 to 0.43 s at the quickstart's size (run 2)
CAPTURE_SECONDS = 1.0
#: seconds of compiling (and capturing) a shape's step, fixed, and ...
COMPILE_SECONDS = 8.0
#: ... per layer: 33.0 s for top-k 7B (32 layers); 11.6 s for PARGS with a 2-layer Llama policy and RM in the GPU
#: tests (``pytest_gpu.log`` of that run): 8 + 32 x 0.8 = 33.6 s, 8 + 4 x 0.8 = 11.2 s
COMPILE_LAYER_SECONDS = 0.8

#: the token loops auto weighs, cheapest first when estimates tie
CANDIDATES = ("eager", "graphs", "compiled")


def step_seconds(layers: int, weight_bytes: float) -> dict[str, float]:
    """Estimated seconds of one decoding step on CUDA per token loop, for models of ``layers`` transformer layers
    and ``weight_bytes`` bytes of weights in all (the module docstring)."""
    weights = weight_bytes / WEIGHT_BYTES_PER_SECOND
    graphs = weights + GRAPHS_STEP_SECONDS + GRAPHS_LAYER_STEP_SECONDS * layers
    eager = max(EAGER_STEP_SECONDS + EAGER_LAYER_STEP_SECONDS * layers, graphs)
    compiled = max(graphs - COMPILED_LAYER_STEP_SAVING * layers, weights)
    return {"eager": eager, "graphs": graphs, "compiled": compiled}


def first_call_seconds(layers: int) -> dict[str, float]:
    """Seconds the first call of a shape costs more than a later one, per token loop."""
    return {"eager": 0.0, "graphs": CAPTURE_SECONDS, "compiled": COMPILE_SECONDS + COMPILE_LAYER_SECONDS * layers}


def run_seconds(layers: int, weight_bytes: float, steps: int, calls: int) -> dict[str, float]:
    """Estimated seconds of ``calls`` calls of one shape, ``steps`` steps each, per token loop."""
    per_step, first = step_seconds(layers, weight_bytes), first_call_seconds(layers)
    return {path: first[path] + max(calls, 1) * steps * per_step[path] for path in CANDIDATES}


def cheapest(seconds: dict[str, float]) -> str:
    """The token loop of the fewest estimated ``seconds`` (the earlier of :data:`CANDIDATES` on a tie)."""
    return min(CANDIDATES, key=lambda path: (seconds[path], CANDIDATES.index(path)))


def cheapest_path(layers: int, weight_bytes: float, steps: int, calls: int) -> str:
    """The token loop with the lowest :func:`run_seconds`."""
    return cheapest(run_seconds(layers, weight_bytes, steps, calls))
