"""`pargs quickstart --all`: the baselines train after the reward models and every method lands in one
prediction run, at a tiny size. The report step is stubbed (its own tests cover it, test_quickstart.py runs
it whole); here only the steps count, and that the report is asked for the run's predictions."""

from __future__ import annotations

import json

from pargs import quickstart
from pargs.quickstart import run_quickstart
from pargs.tasks.synthetic import oracle_reward
from pargs.tasks.synthetic_prepare import SyntheticSizes

#: samples per prompt of every method of predict_all.yaml
METHODS = {"top-k": 10, "best-of-10": 10, "args": 1, "cd-fudge": 10, "dpo": 10, "ppo": 10, "pargs-g": 1, "pargs": 10}


def test_extended_quickstart_trains_every_baseline_and_decodes_every_method(tmp_path, monkeypatch):
    reports, agreements = [], []
    # where run_quickstart looks them up when it runs; a copy bound at import time would escape the stubs and
    # fail the assertions on `reports` and `agreements` below
    monkeypatch.setattr("pargs.report.build_report", lambda inputs, out, **kw: reports.append((inputs, out)) or {})
    monkeypatch.setattr("pargs.report.format_markdown", lambda report: "")
    monkeypatch.setattr(quickstart, "_prefix_agreement", lambda run_dir: agreements.append(run_dir) or "")
    run = tmp_path / "run"
    sizes = SyntheticSizes(seed=1, n_sft=100, n_sft_val=10, n_pairs=32, n_pairs_val=8, n_test=2)
    steps = ("sft", "reward_partial", "reward_full", "dpo", "value", "ppo")
    summary = run_quickstart(
        run,
        seed=1,
        sizes=sizes,
        epochs={s: 1 for s in steps},
        limit_prompts=2,
        extended=True,
        overrides={
            "value_rollouts": {"data.init_args.limit": 4},
            "ppo": {"trainer.limit_train_batches": 1},
            **{s: {"trainer.limit_val_batches": 1} for s in steps},
        },
    )
    for name in ("reference", "rm_partial", "rm_full", "dpo", "value", "ppo"):
        assert (run / "models" / name / "model.safetensors").is_file(), name
    for name in ("dpo", "value", "ppo"):
        assert list((run / "tensorboard" / name).rglob("events.out.tfevents.*")), name
    rollouts = (run / "rollouts" / "predictions-rank0.jsonl").read_text().splitlines()
    assert len(rollouts) == 4 * 8  # 4 training prompts x 8 rollouts, each with the RM's reward
    assert all(isinstance(json.loads(x)["reward"], float) for x in rollouts)
    lines = [json.loads(x) for x in (run / "predictions" / "predictions-rank0.jsonl").read_text().splitlines()]
    counts: dict[str, int] = {}
    for r in lines:
        counts[r["method"]] = counts.get(r["method"], 0) + 1
        assert abs(r["reward"] - oracle_reward(r["prompt"], r["response"])) < 1e-6
    assert counts == {m: 2 * n for m, n in METHODS.items()}
    assert {r["policy"] for r in lines if r["method"] in ("dpo", "ppo")} == {"dpo", "ppo"}
    assert reports == [([run / "predictions"], run / "report")] and agreements == [run]
    assert not (run / "report").exists()  # nothing of the real report ran
    saved = json.loads((run / "quickstart.json").read_text())
    assert set(saved["seconds"]) == {"prepare", *steps, "value_rollouts", "predict_all", "report"}
    assert summary["seconds"] == saved["seconds"]
    header = (run / "configs" / "value_rollouts.yaml").read_text().splitlines()[:2]
    assert header[0].startswith("# pargs predict -c") and "lightning_configs/baselines/value_rollouts.yaml" in header[1]
