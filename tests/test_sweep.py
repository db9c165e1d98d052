"""pargs sweep: one decoding run per (beta, k), tabulated against values computed from its predictions."""

import csv
import json

import numpy as np
import pytest
import yaml

from pargs.cli import main
from pargs.sweep import grid_name


def test_sweep_grid_tables(tmp_path, model_dirs, synthetic_dir):
    cfg = {
        "seed_everything": 0, "return_predictions": False,
        "trainer": {"accelerator": "cpu", "logger": False, "enable_progress_bar": False,
                    "default_root_dir": str(tmp_path)},
        "model": {"class_path": "pargs.lit.DecodeModule", "init_args": {
            "policies": {"reference": {"path": str(model_dirs["reference"])}},
            "scorers": {"rm": {"model": {"path": str(model_dirs["rm"])}}},
            "eval_reward": {"oracle": True}, "max_new_tokens": 6,
            "methods": [{"name": "top-k", "kind": "sample", "top_k": 10},
                        {"preset": "pargs", "scorer": "rm", "samples": 3}]}},  # named by its preset
        "data": {"class_path": "pargs.datamodules.PromptDataModule", "init_args": {
            "predict_file": str(synthetic_dir / "prompts_test.jsonl"), "batch_size": 2}},
    }
    config = tmp_path / "predict.yaml"
    config.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "sweep"
    assert main(["sweep", "-c", str(config), "--out", str(out), "--betas", "0", "2", "--ks", "1", "4",
                 "--limit", "3"]) == 0
    lines = [json.loads(x) for p in (out / "predictions").glob("*.jsonl") for x in p.read_text().splitlines()]
    names = {grid_name("pargs", b, k) for b in (0.0, 2.0) for k in (1, 4)}
    assert {r["method"] for r in lines} == names and len(lines) == 4 * 3 * 3
    with open(out / "sweep.csv") as fh:
        rows = {(float(r["beta"]), int(r["k"])): r for r in csv.DictReader(fh)}
    for (b, k), row in rows.items():
        recs = [r for r in lines if r["method"] == grid_name("pargs", b, k)]
        per_prompt = [np.mean([r["reward"] for r in recs if r["id"] == pid]) for pid in sorted({r["id"] for r in recs})]
        assert float(row["reward"]) == pytest.approx(np.mean(per_prompt))
        assert float(row["reward_se"]) == pytest.approx(np.std(per_prompt, ddof=1) / np.sqrt(len(per_prompt)))
    # k = 1 is greedy decoding whatever beta is: both rows hold the same responses
    greedy = [sorted((r["id"], r["sample"], r["response"]) for r in lines if r["method"] == grid_name("pargs", b, 1))
              for b in (0.0, 2.0)]
    assert greedy[0] == greedy[1]
    table = (out / "sweep.md").read_text()
    assert "Table 13 view" in table and "Table 14 view" in table
    assert (out / "heatmap_reward.png").is_file() and (out / "heatmap_diversity.png").is_file()
