"""pargs sweep: one decoding run per (beta, k), tabulated against values computed from its predictions."""

import csv
import json

import numpy as np
import pytest
import yaml
from PIL import Image

from pargs.cli import main
from pargs.sweep import grid_name, sweep_figures


def test_sweep_grid_tables(tmp_path, model_dirs, synthetic_dir):
    cfg = {
        "seed_everything": 0,
        "return_predictions": False,
        "trainer": {
            "accelerator": "cpu",
            "logger": False,
            "enable_progress_bar": False,
            "default_root_dir": str(tmp_path),
        },
        "model": {
            "class_path": "pargs.lit.DecodeModule",
            "init_args": {
                "policies": {"reference": {"path": str(model_dirs["reference"])}},
                "scorers": {"rm": {"model": {"path": str(model_dirs["rm"])}}},
                "eval_reward": {"oracle": True},
                "max_new_tokens": 6,
                "methods": [
                    {"name": "top-k", "kind": "sample", "top_k": 10},
                    {"preset": "pargs", "scorer": "rm", "samples": 3},
                ],
            },
        },  # named by its preset
        "data": {
            "class_path": "pargs.datamodules.PromptDataModule",
            "init_args": {"predict_file": str(synthetic_dir / "prompts_test.jsonl"), "batch_size": 2},
        },
    }
    config = tmp_path / "predict.yaml"
    config.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "sweep"
    assert (
        main(["sweep", "-c", str(config), "--out", str(out), "--betas", "0", "2", "--ks", "1", "4", "--limit", "3"])
        == 0
    )
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
    greedy = [
        sorted((r["id"], r["sample"], r["response"]) for r in lines if r["method"] == grid_name("pargs", b, 1))
        for b in (0.0, 2.0)
    ]
    assert greedy[0] == greedy[1]
    table = (out / "sweep.md").read_text()
    assert "Table 13 view; reward: synthetic oracle reward" in table and "Table 14 view" in table
    assert "lower = more diverse" in table
    assert {"self_rouge_l", "self_rouge_l_se"} <= set(next(iter(rows.values())))
    for name in ("heatmap_reward", "heatmap_self_rouge_l"):
        with Image.open(out / f"{name}.png") as img:
            assert img.format == "PNG"
        assert (out / f"{name}.pdf").read_bytes().startswith(b"%PDF")


def test_heatmaps_label_the_colorbar_print_se_and_name_blank_cells():
    cells = {
        (0.5, 5): {"reward": 0.25, "reward_se": 0.125, "self_rouge_l": 0.5, "self_rouge_l_se": 0.0625},
        (0.5, 10): {"reward": -1.0, "reward_se": 0.5},  # one sample per prompt: no self-ROUGE-L
        (1.5, 5): {"reward": 1.0, "reward_se": 0.25, "self_rouge_l": 0.75, "self_rouge_l_se": 0.125},
    }
    figs = sweep_figures(cells, "pargs", [0.5, 1.5], [5, 10], "synthetic oracle reward")
    assert set(figs) == {"heatmap_reward", "heatmap_self_rouge_l"}
    ax, bar = figs["heatmap_reward"].axes
    assert bar.get_ylabel() == "average synthetic oracle reward" and "synthetic oracle reward" in ax.get_title()
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("k", "beta")
    assert sorted(t.get_text() for t in ax.texts) == sorted(["0.25\n± 0.12", "-1.00\n± 0.50", "1.00\n± 0.25"])
    notes = " ".join(t.get_text() for t in figs["heatmap_reward"].texts).replace("\n", " ")
    assert "Not shown: beta 1.5 k 10 (no scored predictions)." in notes and "± 1 standard error" in notes
    ax, bar = figs["heatmap_self_rouge_l"].axes
    assert bar.get_ylabel() == "self-ROUGE-L (lower = more diverse)"
    assert sorted(t.get_text() for t in ax.texts) == sorted(["0.50\n± 0.06", "0.75\n± 0.12"])
    notes = " ".join(t.get_text() for t in figs["heatmap_self_rouge_l"].texts).replace("\n", " ")
    assert "Not shown: beta 0.5 k 10, beta 1.5 k 10 (one sample per prompt" in notes
