"""``pargs report``, ``pargs prepare-synthetic`` and ``pargs prefix-agreement`` through ``pargs.cli.main``."""

from __future__ import annotations

import json

import pytest

from pargs.cli import main
from pargs.models.loading import ModelSpec, load_reward_model, load_tokenizer
from pargs.records import load_preferences
from pargs.tasks.synthetic_prepare import SyntheticSizes, prepare_synthetic

REWARDS = {"top-k": {"p0": [0.0, 1.0], "p1": [2.0, 2.0]}, "pargs": {"p0": [3.0, 1.0], "p1": [0.5, 1.5]}}


def _predictions(run):
    lines = [
        {
            "id": pid,
            "method": m,
            "sample": s,
            "prompt": f"prompt {pid}",
            "response": f"{m} says {s} to {pid}",
            "tokens": 4,
            "stop": "eos",
            "reward": r,
            "decode_seconds": 0.04,
        }
        for m, by_prompt in REWARDS.items()
        for pid, rewards in by_prompt.items()
        for s, r in enumerate(rewards)
    ]
    (run / "predictions").mkdir(parents=True)
    (run / "predictions" / "predictions-rank0.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))


def test_report_writes_the_table_it_prints(tmp_path, capsys):
    run = tmp_path / "run"
    _predictions(run)
    assert main(["report", str(run), "--reward-name", "synthetic oracle reward"]) == 0
    printed = capsys.readouterr().out
    table = (run / "report" / "results.md").read_text()
    assert printed.startswith(table) and f"written to {run / 'report'}" in printed
    assert "reward: synthetic oracle reward, mean over prompts" in table
    assert (run / "report" / "reward.png").is_file() and (run / "report" / "reward.pdf").is_file()
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines() if line.startswith("| ")}
    # mean over prompts of the per-prompt mean: top-k (0.5 + 2.0) / 2, pargs (2.0 + 1.0) / 2
    assert " | 1.250 ± " in rows["top-k"] and " | 1.500 ± " in rows["pargs"]
    assert list((run / "tensorboard" / "report").glob("events.out.tfevents.*"))


def test_report_of_an_empty_folder_is_one_clear_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 1
    assert capsys.readouterr().err == f"pargs: error: {tmp_path / 'empty'}: holds no prediction files (*.jsonl)\n"


def test_prepare_synthetic_passes_the_sizes_given_and_keeps_the_others(tmp_path, capsys):
    given = {"seed": 3, "n_sft": 12, "n_pairs": 6, "n_pairs_val": 4, "n_test": 2}
    args = [f"--{k.replace('_', '-')}={v}" for k, v in given.items()]
    assert main(["prepare-synthetic", "--out", str(tmp_path / "cli"), *args]) == 0
    files = json.loads(capsys.readouterr().out)
    assert {k: v["records"] for k, v in files.items() if k != "prompts_train"} == {
        "sft_train": 12,
        "sft_val": SyntheticSizes.n_sft_val,
        "pairs_train": 6,
        "pairs_val": 4,
        "prompts_test": 2,
    }
    prepare_synthetic(tmp_path / "direct", SyntheticSizes(**given))
    for name in files:
        assert (tmp_path / "cli" / f"{name}.jsonl").read_text() == (tmp_path / "direct" / f"{name}.jsonl").read_text()


def test_prefix_agreement_prints_and_writes_one_row_per_model(tmp_path, synthetic_dir, model_dirs, capsys):
    from pargs.metrics.prefix_agreement import prefix_agreement

    out = tmp_path / "tables" / "agreement.md"
    pairs_file = synthetic_dir / "pairs_val.jsonl"
    assert main(["prefix-agreement", "--pairs", str(pairs_file), "--rm", str(model_dirs["rm"]), "--out", str(out)]) == 0
    table = out.read_text()
    assert capsys.readouterr().out.startswith(table)
    row = next(line for line in table.splitlines() if line.startswith("| rm |"))
    spec = ModelSpec(path=str(model_dirs["rm"]))
    tokenizer = load_tokenizer(spec)
    pairs, _ = load_preferences(pairs_file)
    expected = prefix_agreement(load_reward_model(spec, tokenizer).eval(), tokenizer, pairs)
    assert [float(x) for x in row.strip("| ").split(" | ")[1:]] == pytest.approx(
        [expected[f] for f in sorted(expected)], abs=5e-4
    )
    assert f"Share of {len(pairs)} held-out pairs" in table
