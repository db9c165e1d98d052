"""Decoding speed on a GPU: pargs' token loops next to Hugging Face ``generate``, every case in a fresh process.

The driver runs each case of a plan as ``python benchmarks/gpu_case.py ...`` in a process of its own (what a case
measures, and why a process each: ``benchmarks/gpu_case.py``) and collects their JSON lines. Cases run in the
plan's order, most wanted first, while the time budget lasts (``--budget``; a case is skipped when less than its
estimate is left, and listed as not run). Results are rewritten after every case, so a run cut short keeps what
it measured.

Plans (bf16, 64-token prompts, exactly 128 new tokens, k = 10, Llama shapes with random weights):

- ``final``: the table of issue 24: top-k (7B) and PARGS (7B + 1B RM, 7B + 7B RM) at batches 8, 32 and 1 on the
  ``graphs`` path, Hugging Face ``generate`` eager and with a static cache + compile at batches 8 and 32 (both
  in every run), the bandwidth bound, first-call costs, token agreement between paths
  (``benchmarks/gpu_agreement.py``), the quickstart's regime, then the ``compiled`` and ``eager`` paths at batch
  8 if time is left. Written to ``OUT/decoding_gpu.md`` (commit it as ``benchmarks/results/decoding_gpu.md``).
- ``probe``: where a step's time goes (torch.profiler tables of the graphs path, top-k 7B and PARGS 7B + 1B at
  batch 8), compiled vs graphs vs eager step times and first-call costs at 7B (top-k and PARGS; compiled top-k
  twice: the second process finds Inductor's on-disk caches warm) and at the quickstart's size, and Hugging Face
  eager in a fresh process (also timed the way the old benchmark did). Written to ``OUT/probe.md``.
- ``last``: what the run of 2026-12-04 left open, for ~140 s: PARGS 7B + 1B at batch 8 compiled, top-k 7B at
  batch 32 compiled, the quickstart's regime (eager and graphs), PARGS 7B + 1B at batch 32 on graphs, then at
  batch 8 on graphs again if time is left.
  Written to ``OUT/last.md``; ``--merge`` puts its rows into the table of the earlier run.

``--device cpu`` runs the same plans on tiny models in float32 (``static`` for ``graphs``), to check the code.

While a case runs, the next case's process is started and imports torch and transformers (``gpu_case.py
--wait``), so that its imports cost no time of the run; it starts its case when the one before has ended.

``--merge JSONL LABEL`` (repeated, oldest first) writes ``OUT/decoding_gpu.md`` from the JSON lines of earlier runs
instead of running anything: one table, a later run's case replacing an earlier one of the same name (unless it failed), every number
marked with the run it came from ([1], [2], ... in the order given, named by LABEL). A section "## The quickstart
on this GPU" already at the end of ``OUT/decoding_gpu.md`` is kept.

Usage: python benchmarks/decoding_gpu.py --plan final --budget 280 --out /tmp/gpu
       python benchmarks/decoding_gpu.py --plan probe --device cpu --budget 300 --out /tmp/probe   (a dry run)
       python benchmarks/decoding_gpu.py --out benchmarks/results \\
           --merge run1/final.jsonl "2026-12-04, plan final" --merge run2/last.jsonl "2026-12-05, plan last"
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

CASE = str(Path(__file__).with_name("gpu_case.py"))
#: bytes per second of the H200's memory, measured by a device-to-device copy (KINDS.md of the device tool)
BANDWIDTH = 4.3e12
#: issue 24's targets: (method, models, batch) -> tok/s; top-k's are relative to HF static + compile (x 1.1)
TARGETS = {
    ("pargs", "7b+1b", 8): 1100,
    ("pargs", "7b+1b", 32): 3000,
    ("pargs", "7b+1b", 1): 120,
    ("pargs", "7b+7b", 8): 700,
}
TOPK_OVER_HF_STATIC = 1.1
#: a decode of 8 prompts pays at most this much for its first call (compiling and capturing)
FIRST_CALL_EXTRA_S = 5.0
WHAT = {("top-k", "7b"): "top-k, 7B", ("pargs", "7b+1b"): "PARGS 7B + 1B RM", ("pargs", "7b+7b"): "PARGS 7B + 7B RM"}


@dataclass
class Case:
    """One process: its column in the table, its arguments to gpu_case.py and its estimated seconds."""

    column: str  #: e.g. "graphs", "HF eager", "HF static + compile", "agreement", "profile"
    method: str  #: top-k or pargs ("hf" cases: top-k)
    models: str  #: 7b, 7b+1b, 7b+7b, qs+qs
    batch: int
    args: list[str]
    need: float  #: seconds it takes, about (measured on the H200 where known)
    result: dict = field(default_factory=dict)
    run: int = 0  #: merged tables: the run it came from (1, 2, ...); 0 = this one

    @property
    def label(self) -> str:
        return f"{self.column}, {self.method}, {self.models}, batch {self.batch}"


def pargs_case(method: str, models: str, batch: int, path: str, need: float, *extra: str) -> Case:
    args = ["pargs", "--method", method, "--models", models, "--batch", str(batch), "--path", path, *extra]
    return Case(path, method, models, batch, args, need)


def hf_case(batch: int, static: bool, need: float, *extra: str) -> Case:
    column = "HF static + compile" if static else "HF eager"
    args = ["hf", "--models", "7b", "--batch", str(batch), *(["--static"] if static else []), *extra]
    return Case(column, "top-k", "7b", batch, args, need)


#: cases of at most this many seconds keep their time when a case before them runs long (its timeout leaves it)
SHORT_CASE_S = 15
SMALL = ["small", "--models", "qs+qs", "--batch", "16", "--new-tokens", "32", "--prompt-len", "12"]


def plan(name: str, out: Path) -> list[Case]:
    """The cases of a plan, most wanted first (the estimates include ~9 s of process start and model build)."""
    if name == "last":  # the estimates: the 2026-12-04 run's, less the imports a started process has done
        return [
            pargs_case("pargs", "7b+1b", 8, "compiled", 70, "--repeats", "2"),  # ~55 s of compiling (54 layers)
            pargs_case("top-k", "7b", 32, "compiled", 42, "--repeats", "2"),  # 33 s at batch 8
            Case("small", "both", "qs+qs", 16, [*SMALL, "--paths", "eager,graphs"], 12),
            pargs_case("pargs", "7b+1b", 32, "graphs", 14),  # the batch-32 target (3,000), never measured
            pargs_case("pargs", "7b+1b", 8, "graphs", 10),  # unchanged since 2026-12-04: a repeat, if time is left
        ]
    if name == "probe":
        return [
            pargs_case("top-k", "7b", 8, "graphs", 16, "--profile", str(out / "profile_topk_graphs.txt")),
            pargs_case("pargs", "7b+1b", 8, "graphs", 20, "--profile", str(out / "profile_pargs_graphs.txt")),
            hf_case(8, False, 25, "--cold", "--repeats", "2"),
            pargs_case("top-k", "7b", 8, "compiled", 45),
            Case("small", "both", "qs+qs", 16, SMALL, 30),
            pargs_case("pargs", "7b+1b", 8, "compiled", 70, "--repeats", "2"),
            Case("compiled again", "top-k", "7b", 8, [*pargs_case("top-k", "7b", 8, "compiled", 0).args,
                                                      "--repeats", "1"], 22),  # Inductor's disk caches now warm
            pargs_case("top-k", "7b", 8, "eager", 13, "--new-tokens", "32", "--repeats", "1"),
            pargs_case("pargs", "7b+1b", 8, "eager", 14, "--new-tokens", "32", "--repeats", "1"),
            hf_case(8, True, 42, "--repeats", "2"),
        ]  # fmt: skip
    cases = [  # one run has to serve: the targets' cases first, the compiled path early (it may beat graphs)
        pargs_case("top-k", "7b", 8, "graphs", 18, "--profile", str(out / "profile_topk_graphs.txt")),
        hf_case(8, False, 17),
        hf_case(8, True, 42),
        pargs_case("pargs", "7b+1b", 8, "graphs", 22, "--profile", str(out / "profile_pargs_graphs.txt")),
        pargs_case("top-k", "7b", 8, "compiled", 45),
        pargs_case("pargs", "7b+7b", 8, "graphs", 22),
        pargs_case("top-k", "7b", 32, "graphs", 14),
        hf_case(32, True, 42, "--repeats", "2"),
        hf_case(32, False, 15, "--repeats", "2"),
        pargs_case("pargs", "7b+1b", 32, "graphs", 18),
        pargs_case("pargs", "7b+1b", 1, "graphs", 16),
        pargs_case("top-k", "7b", 1, "graphs", 13),
        Case("small", "both", "qs+qs", 16, SMALL, 30),
        Case("agreement", "both", "1b", 8, ["agree", "--models", "1b", "--batch", "8", "--new-tokens", "64"], 25),
        pargs_case("pargs", "7b+1b", 8, "compiled", 70),
        pargs_case("top-k", "7b", 8, "eager", 15, "--repeats", "1"),
        pargs_case("pargs", "7b+1b", 8, "eager", 22, "--repeats", "1"),
        pargs_case("pargs", "7b+7b", 32, "graphs", 22),
    ]  # fmt: skip
    return cases


def for_cpu(case: Case) -> Case:
    """The same case on tiny models in float32 on a CPU (a dry run of the code; the compiled path with dynamo's
    graphs run by aot_eager, not Inductor, which takes minutes per shape on a CPU)."""
    swap = {"7b": "tiny", "7b+1b": "tiny+tiny", "7b+7b": "tiny+tiny", "1b": "tiny", "graphs": "static"}
    args = [swap.get(a, a) for a in case.args]
    args += ["--device", "cpu", "--dtype", "float32", "--new-tokens", "16", "--prompt-len", "8", "--repeats", "1"]
    args += ["--compile-backend", "aot_eager"]
    return Case(case.column, case.method, case.models, case.batch, args, case.need)


def start(case: Case) -> subprocess.Popen:
    """The case's process, started ahead of its turn: it imports torch and transformers, then waits for a line."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if case.column.startswith("compiled"):
        env["TORCH_LOGS"] = "recompiles"  # a recompilation shows in the log with its reason
    return subprocess.Popen(
        [sys.executable, CASE, *case.args, "--label", case.label, "--wait"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def run(case: Case, proc: subprocess.Popen, budget_left: float, log) -> dict:
    """Let a started case's process run (:func:`start`); its JSON line (or what went wrong)."""
    begun = time.perf_counter()
    try:
        stdout, stderr = proc.communicate("go\n", timeout=max(10.0, min(budget_left, 4 * case.need + 30)))
        code = proc.returncode
    except subprocess.TimeoutExpired:  # a hung case leaves time for the rest
        proc.kill()
        stdout, stderr = proc.communicate()
        stderr, code = (stderr or "") + "\n(killed: out of time)", "timeout"
    log.write(f"\n=== {case.label}: {' '.join(case.args)} (exit {code}, {time.perf_counter() - begun:.1f} s)\n")
    log.write((stderr or "")[-20000:])
    log.flush()
    lines = [json.loads(line) for line in (stdout or "").splitlines() if line.startswith("{")]
    result = lines[-1] if lines else {"error": f"no result (exit {code}): {(stderr or '').strip()[-300:]}"}
    result.setdefault("case", case.label)
    result["wall s"] = round(time.perf_counter() - begun, 1)
    return result


def weights_bytes(models: str, dtype_bytes: int = 2) -> float:
    """Bytes of the weights a step reads once: the policy's and the reward model's (meta-device models)."""
    import torch
    from transformers import LlamaForCausalLM, LlamaForSequenceClassification

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.gpu_case import llama_config

    policy, _, rm = models.partition("+")
    total = 0
    with torch.device("meta"):
        total += sum(p.numel() for p in LlamaForCausalLM(llama_config(policy, 32000)).parameters())
        if rm:
            config = llama_config(rm, 32000, num_labels=1)
            total += sum(p.numel() for p in LlamaForSequenceClassification(config).parameters())
    return total * dtype_bytes


def _get(cases: list[Case], column: str, method: str, models: str, batch: int) -> dict:
    for c in cases:
        if (c.column, c.method, c.models, c.batch) == (column, method, models, batch) and c.result:
            return c.result
    return {}


def _mark(result: dict) -> str:
    """`` [n]``: the run a merged result came from (nothing for this run's own)."""
    return f" [{result['_run']}]" if result.get("_run") else ""


def _tok(result: dict) -> str:
    if not result:
        return "-"
    if "error" in result:
        return ("out of time" if "exit timeout" in result["error"] else "failed") + _mark(result)
    return f"{result['tok/s']:,.0f}{_mark(result)}"


def main_table(cases: list[Case], bounds: dict) -> list[str]:
    """The table of issue 24: batch, what, pargs per path, the HF anchors, the bound, the target."""
    lines = [
        "| batch | what | pargs graphs | pargs compiled | pargs eager | HF eager | HF static + compile | bound "
        "| target | met |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for batch in (8, 32, 1):
        for (method, models), what in WHAT.items():
            paths = {p: _get(cases, p, method, models, batch) for p in ("graphs", "compiled", "eager")}
            if not any(paths.values()):
                continue
            hf = {p: _get(cases, p, "top-k", "7b", batch) for p in ("HF eager", "HF static + compile")}
            if method != "top-k":
                hf = {p: {} for p in hf}
            best = max((r["tok/s"] for r in paths.values() if "tok/s" in r), default=None)
            if method == "top-k":
                anchor = hf["HF static + compile"].get("tok/s")
                target = TOPK_OVER_HF_STATIC * anchor if anchor else None
                target_text = f"{TOPK_OVER_HF_STATIC}x HF static = {target:,.0f}" if target else "-"
            else:
                target = TARGETS.get((method, models, batch))
                target_text = f"{target:,}" if target else "-"
            met = "-" if target is None or best is None else ("yes" if best >= target else "no")
            bound = batch * BANDWIDTH / bounds[models]
            lines.append(
                f"| {batch} | {what} | {_tok(paths['graphs'])} | {_tok(paths['compiled'])} | {_tok(paths['eager'])} "
                f"| {_tok(hf['HF eager'])} | {_tok(hf['HF static + compile'])} | {bound:,.0f} | {target_text} | {met} |"
            )
    return lines


def first_call_table(cases: list[Case]) -> list[str]:
    lines = [
        "| case | first call s | later call s (median) | first call extra s | of it compiling / capturing s "
        "| later calls compiled |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for c in cases:
        r = c.result
        if "first call s" not in r or "calls s" not in r:
            continue
        later = statistics.median(r["calls s"])
        capture = f"{r['capture s']:.2f}" if "capture s" in r else "-"
        compiled_again = "-" if "later capture s" not in r else ("no" if r["later capture s"] == 0 else "YES")
        lines.append(
            f"| {c.label}{_mark(r)} | {r['first call s']:.2f} | {later:.3f} | {r['first call s'] - later:.2f} "
            f"| {capture} | {compiled_again} |"
        )
    return lines


def small_table(cases: list[Case]) -> list[str]:
    """The quickstart's regime: every path in one process, and the numbers ``auto`` is set from."""
    r = next((c.result for c in cases if c.column == "small" and c.result), {})
    if not r or "error" in r:
        return [f"The quickstart's regime: {r.get('error', 'not run')}."]
    lines = ["| method, path | first call s | of it capturing / compiling s | later call s |", "|---|---:|---:|---:|"]
    for key, v in r.items():
        if isinstance(v, dict) and "call s" in v:
            lines.append(f"| {key}{_mark(r)} | {v['first call s']:.3f} | {v['capture s']:.3f} | {v['call s']:.4f} |")
    return lines


def auto_numbers(cases: list[Case], bounds: dict, layers: dict) -> list[str]:
    """What ``auto``'s costs (``pargs/decoding/path_costs.py``) are set from, next to the estimates its constants
    give now: the eager and captured steps at the quickstart's size (a fixed cost plus one per layer, from top-k's
    2 layers and PARGS' 2 + 2), and each 7B case's step and first call."""
    from pargs.decoding import path_costs as pc

    lines = []
    small = next((c.result for c in cases if c.column == "small" and c.result and "error" not in c.result), None)
    if small:
        steps = small.get("new tokens", 32)
        ms = {k: v["call s"] / steps * 1e3 for k, v in small.items() if isinstance(v, dict) and "call s" in v}
        if "top-k eager" in ms and "pargs eager" in ms:
            per_layer = (ms["pargs eager"] - ms["top-k eager"]) / 2
            lines.append(
                f"- eager step at the quickstart's size{_mark(small)}: top-k (2 layers) {ms['top-k eager']:.2f} ms, "
                f"PARGS (2 + 2 layers, k = 10) {ms['pargs eager']:.2f} ms: {ms['top-k eager'] - 2 * per_layer:.2f} ms "
                f"+ {per_layer:.2f} ms per layer (path_costs: {pc.EAGER_STEP_SECONDS * 1e3:.2f} + "
                f"{pc.EAGER_LAYER_STEP_SECONDS * 1e3:.2f})"
            )
        for method, n in (("top-k", 2), ("pargs", 4)):
            graphs = small.get(f"{method} graphs")
            if graphs:
                lines.append(
                    f"- graphs at that size, {method}{_mark(small)}: {ms[f'{method} graphs']:.3f} ms a step "
                    f"(path_costs: {pc.step_seconds(n, 0)['graphs'] * 1e3:.3f}); first call "
                    f"{graphs['first call s'] - graphs['call s']:.2f} s more than a later one (CAPTURE_SECONDS: "
                    f"{pc.CAPTURE_SECONDS})"
                )
    per_step = {}
    for c in cases:
        r = c.result
        if c.models not in layers or "calls s" not in r or c.column not in pc.CANDIDATES:
            continue
        n, later = layers[c.models], statistics.median(r["calls s"])
        per_step[(c.column, c.method, c.models, c.batch)] = later / r["new tokens"]
        estimate = pc.step_seconds(n, bounds[c.models])[c.column]
        lines.append(
            f"- {c.label}{_mark(r)}: {later / r['new tokens'] * 1e3:.2f} ms a step (path_costs: {estimate * 1e3:.2f}); "
            f"first call {r['first call s'] - later:.1f} s more than a later one "
            f"(path_costs: {pc.first_call_seconds(n)[c.column]:.1f})"
        )
    for (path, method, models, batch), compiled in per_step.items():
        graphs = per_step.get(("graphs", method, models, batch))
        if path == "compiled" and graphs:
            lines.append(
                f"- compiled saves {(graphs - compiled) / layers[models] * 1e6:.0f} us per layer-step over graphs: "
                f"{method}, {models}, batch {batch} (COMPILED_LAYER_STEP_SAVING: "
                f"{pc.COMPILED_LAYER_STEP_SAVING * 1e6:.0f})"
            )
    return lines


def merged(sources: list[tuple[str, str]]) -> tuple[list[Case], list[Case]]:
    """The cases of earlier runs' JSON lines (``[(path, label)]``, oldest first): ``(current, every)``, where a later
    run's case replaces an earlier one of the same name in ``current`` when it measured something (a later case
    that failed or ran out of time keeps the earlier number, and is listed under every case); each result is
    marked with its run."""
    current: dict[str, Case] = {}
    every: list[Case] = []
    for number, (path, _) in enumerate(sources, 1):
        for line in Path(path).read_text().splitlines():
            result = json.loads(line) if line.startswith("{") else {}
            if "case" not in result:  # a case that left no name (an old driver's timeout line) cannot be placed
                continue
            column, method, models, batch = result["case"].rsplit(", ", 3)
            result["_run"] = number
            case = Case(column, method, models, int(batch.split()[-1]), [], 0.0, result, number)
            every.append(case)
            earlier = current.get(case.label)
            if earlier is None or "error" not in result or "error" in earlier.result:
                current[case.label] = case
    return list(current.values()), every


def write(ns, cases: list[Case], skipped: list[str], bounds: dict, layers: dict, started: float, **merge) -> None:
    """The plan's Markdown (``--merge``: ``merge["every"]`` holds every run's cases, ``merge["sources"]`` the
    runs)."""
    out = Path(ns.out)
    name = "decoding_gpu" if ns.plan == "final" or merge else ns.plan
    title = {"probe": "GPU probe: where decoding time goes", "last": "Decoding speed on a GPU: the last run"}
    versions = next((c.result.get("versions") for c in cases if c.result.get("versions")), "")
    setup = (
        "Llama shapes with random weights in bf16, 64-token prompts, exactly 128 new tokens, k = 10; tok/s = batch x "
        "128 / the median of the calls after the first (`calls s` of every case below). Bound: the weights read "
        "once per step at 4.3 TB/s."
    )
    if merge:
        runs = [f"[{n}] {label} (`{Path(path).name}`)" for n, (path, label) in enumerate(merge["sources"], 1)]
        header = (
            f"Merged by `python benchmarks/decoding_gpu.py --merge` from the runs {'; '.join(runs)} ({versions}): "
            "every case in a fresh process; each number is marked with its run, a later run's case replacing an "
            f"earlier one of the same name. {setup}"
        )
    else:
        header = (
            f"Written by `python benchmarks/decoding_gpu.py --plan {ns.plan}` ({versions or ns.device}): every case in "
            f"a fresh process, {time.perf_counter() - started:.0f} s in all. {setup}"
        )
    lines = [
        f"# {title.get(ns.plan if not merge else '', 'Decoding speed on a GPU')}",
        "",
        header,
        "",
        *main_table(cases, bounds),
        "",
        "## First calls (compiling and capturing) and later calls",
        "",
        *first_call_table(cases),
        "",
        "## The quickstart's regime (GPT-2, 2 layers, hidden 128; 16 rows, 32 new tokens; one process)",
        "",
        *small_table(cases),
        "",
        "## What `auto` is set from",
        "",
        *(auto_numbers(cases, bounds, layers) or ["(not measured in this run)"]),
    ]
    agreement = [c.result for c in cases if c.column == "agreement" and c.result]
    if agreement:
        from benchmarks.gpu_agreement import agreement_lines

        lines += ["", "## Token agreement between paths", "", *agreement_lines(agreement[0])]
    launches = [u for c in cases for u in c.result.get("launch us", []) if u]
    if launches:
        lines += [
            "",
            f"Host check: a one-element kernel launched in {min(launches):.1f}-{max(launches):.1f} us at the start and "
            "end of the cases (the same host speed throughout means the eager numbers are comparable).",
        ]
    if skipped:
        lines += ["", f"Not run (time budget of {ns.budget:.0f} s): " + "; ".join(skipped) + "."]
    profiles = sorted(p.name for p in out.glob("profile_*.txt"))
    if profiles:
        lines += ["", "Profiles: " + ", ".join(profiles) + "."]
    every = merge.get("every", cases)
    lines += ["", "## Every case", ""]
    lines += [f"- {c.label}{_mark(c.result)}: `{json.dumps(_unmarked(c.result), default=str)}`" for c in every]
    path = out / f"{name}.md"
    kept = _quickstart_section(path) if merge else []
    path.write_text("\n".join(lines + kept) + "\n")


def _unmarked(result: dict) -> dict:
    return {k: v for k, v in result.items() if k != "_run"}


#: the section gpu_check.sh appends to the table; a merge keeps it
QUICKSTART_SECTION = "## The quickstart on this GPU"


def _quickstart_section(path: Path) -> list[str]:
    """The lines of :data:`QUICKSTART_SECTION` at the end of an existing table (none if there is none)."""
    if not path.exists():
        return []
    text = path.read_text()
    at = text.find(QUICKSTART_SECTION)
    return ["", *text[at:].rstrip("\n").splitlines()] if at >= 0 else []


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plan", choices=["final", "probe", "last"], default="final")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--budget", type=float, default=280.0, help="seconds; cases that no longer fit are skipped")
    parser.add_argument("--out", default="/tmp/decoding_gpu")
    parser.add_argument(
        "--merge",
        nargs=2,
        action="append",
        metavar=("JSONL", "LABEL"),
        help="write OUT/decoding_gpu.md from these runs' JSON lines (repeat, oldest first) instead of running a plan",
    )
    ns = parser.parse_args(argv)
    started = time.perf_counter()
    out = Path(ns.out)
    out.mkdir(parents=True, exist_ok=True)
    layers = {"7b": 32, "7b+1b": 54, "7b+7b": 64}
    if ns.merge:
        cases, every = merged(ns.merge)
        bounds = {m: weights_bytes(m) for m in {c.models for c in cases if c.models in layers}}
        write(ns, cases, [], bounds, layers, started, every=every, sources=ns.merge)
        print((out / "decoding_gpu.md").read_text())
        return
    cases = plan(ns.plan, out)
    if ns.device != "cuda":
        cases = [for_cpu(c) for c in cases]
    skipped: list[str] = []
    started_procs: dict[int, subprocess.Popen] = {}

    def process(i: int) -> subprocess.Popen | None:
        """Case i's process, started now if it was not yet (it imports, then waits for its turn)."""
        if i < len(cases) and i not in started_procs:
            started_procs[i] = start(cases[i])
        return started_procs.get(i)

    process(0)  # its imports run while this process builds the meta models below
    bounds = {m: weights_bytes(m) for m in {c.models for c in cases if c.models in layers}}

    with open(out / f"{ns.plan}.log", "a") as log, open(out / f"{ns.plan}.jsonl", "a") as jsonl:
        for i, case in enumerate(cases):
            left = ns.budget - (time.perf_counter() - started)
            if left < case.need:
                skipped.append(f"{case.label} (needs ~{case.need:.0f} s, {left:.0f} s left)")
                continue
            proc = process(i)
            process(i + 1)  # the next case imports while this one runs
            # a case that hangs or runs long still leaves the short cases after it their time
            reserve = sum(c.need for c in cases[i + 1 :] if c.need <= SHORT_CASE_S)
            case.result = run(case, proc, left - reserve if left - reserve >= case.need else left, log)
            jsonl.write(json.dumps(case.result, default=str) + "\n")
            jsonl.flush()
            print(json.dumps(case.result, default=str), flush=True)
            write(ns, cases, skipped, bounds, layers, started)
    for proc in started_procs.values():  # started ahead for a case that did not fit
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    write(ns, cases, skipped, bounds, layers, started)
    print((out / f"{'decoding_gpu' if ns.plan == 'final' else ns.plan}.md").read_text())


if __name__ == "__main__":
    main()
