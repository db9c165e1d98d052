"""The whole quickstart pipeline, end to end, at a reduced size."""

from __future__ import annotations

import json

from pargs.cli import main
from pargs.quickstart import run_quickstart
from pargs.tasks.synthetic import oracle_reward
from pargs.tasks.synthetic_prepare import SyntheticSizes
from tests.subprocesses import run_pargs

METHODS = {"top-k": 10, "best-of-10": 10, "args": 1, "pargs-g": 1, "pargs": 10}  # samples per prompt


def _run(run, seed):
    sizes = SyntheticSizes(seed=seed, n_sft=200, n_sft_val=20, n_pairs=64, n_pairs_val=16, n_test=3)
    return run_quickstart(
        run, seed=seed, sizes=sizes, epochs={"sft": 1, "reward_partial": 1, "reward_full": 1}, limit_prompts=3
    )


def _lines(run):
    return [json.loads(x) for p in sorted((run / "predictions").glob("*.jsonl")) for x in p.read_text().splitlines()]


def test_quickstart_runs_end_to_end(tmp_path):
    run = tmp_path / "run"
    summary = _run(run, seed=1)
    for name in ("reference", "rm_partial", "rm_full"):
        assert (run / "models" / name / "model.safetensors").is_file()
    for name in ("sft", "reward_partial", "reward_full"):
        assert list((run / "tensorboard" / name).rglob("events.out.tfevents.*")), name
    counts = {}
    for r in _lines(run):
        counts[r["method"]] = counts.get(r["method"], 0) + 1
        assert abs(r["reward"] - oracle_reward(r["prompt"], r["response"])) < 1e-6
    assert counts == {m: 3 * n for m, n in METHODS.items()}
    table = (run / "report" / "results.md").read_text()
    for method in METHODS:
        assert method in table and method in summary["table"]
    assert "reward: synthetic oracle reward," in table
    rows = {r.method: r for r in summary["report"].rows}
    # the paper's FLOPs convention: Best-of-10 is 10 plain responses (the context term moves it a little), the
    # guided methods 1 + k C_RM / C_LM = 11 with RMs as large as the policy; prompt prefill is nowhere counted
    assert 9.0 < rows["best-of-10"].flops_overhead < 11.0, rows["best-of-10"].flops_overhead
    assert 10.0 < rows["pargs"].flops_overhead < 12.0, rows["pargs"].flops_overhead
    agreement = (run / "report" / "prefix_agreement.md").read_text()
    assert "| rm_partial |" in agreement and "| rm_full |" in agreement
    saved = json.loads((run / "quickstart.json").read_text())
    assert set(saved["seconds"]) == {"prepare", "sft", "reward_partial", "reward_full", "predict", "report"}
    for step in ("sft", "reward_partial", "reward_full", "predict"):
        assert (run / "configs" / f"{step}.yaml").read_text().startswith("# pargs ")

    # the README's next step, on the copied config: a changed beta under the same name is refused, not decoded again
    before = (run / "predictions" / "predictions-rank0.jsonl").read_bytes()
    proc = run_pargs("predict", "-c", str(run / "configs" / "predict.yaml"), "--method", "pargs.beta=3")
    assert proc.returncode == 1 and "method 'pargs' (30 lines): beta 1.5 -> 3.0" in proc.stderr, proc.stderr[-2000:]
    assert (run / "predictions" / "predictions-rank0.jsonl").read_bytes() == before
    # a second report names the reward the lines name, not "evaluation reward"
    assert main(["report", str(run)]) == 0
    assert "reward: synthetic oracle reward," in (run / "report" / "results.md").read_text()

    # run again into the same directory with another seed: other data, other models; every line is decoded again
    first = {(r["id"], r["method"], r["sample"]): r["prompt"] for r in _lines(run)}
    _run(run, seed=2)
    again = _lines(run)
    assert len(again) == len(first) and all(
        abs(r["reward"] - oracle_reward(r["prompt"], r["response"])) < 1e-6 for r in again
    )
    assert any(first[(r["id"], r["method"], r["sample"])] != r["prompt"] for r in again)  # seed 2's prompts
    # the re-run's choices were the quickstart's, not the configs': a copied config keeps the safe defaults
    assert "on_change: restart" not in (run / "configs" / "predict.yaml").read_text()
