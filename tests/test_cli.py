"""The console scripts, run as a user runs them: in a subprocess, on tiny configs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from transformers import AutoConfig, AutoTokenizer

from pargs.models.encoding import encode_prompt
from pargs.records import load_prompts

ENV = dict(os.environ, PYTHONUNBUFFERED="1", TOKENIZERS_PARALLELISM="false")
BIN = Path(sys.executable).parent


def run(*args, check=True):
    proc = subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, text=True, env=ENV, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{args} exited {proc.returncode}\nSTDOUT:\n{proc.stdout[-3000:]}\nSTDERR:\n{proc.stderr[-5000:]}"
        )
    return proc


def _write(path: Path, cfg: dict) -> Path:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def _trainer(tmp_path, **kw):
    return {
        "accelerator": "cpu",
        "devices": 1,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "default_root_dir": str(tmp_path),
        **kw,
    }


def test_help_lists_every_command():
    out = run("pargs", "--help").stdout
    for cmd in ("fit", "validate", "test", "predict", "quickstart", "report", "prepare-synthetic"):
        assert cmd in out
    assert "fit" in run("lightning", "--help").stdout
    module = subprocess.run([sys.executable, "-m", "pargs", "--help"], capture_output=True, text=True, env=ENV)
    assert module.returncode == 0 and "quickstart" in module.stdout


def test_the_lightning_package_ships_no_lightning_command_of_its_own():
    """Our `lightning` script must not shadow (or be shadowed by) one from the pinned lightning release."""
    scripts = [ep for ep in metadata.distribution("lightning").entry_points if ep.group == "console_scripts"]
    assert "lightning" not in {ep.name for ep in scripts}
    ours = [ep for ep in metadata.distribution("pargs").entry_points if ep.name == "lightning"]
    assert ours and ours[0].value == "pargs.cli:main"


def test_fit_then_predict_write_what_they_say(tmp_path, synthetic_dir, model_dirs):
    export = tmp_path / "rm_export"
    fit_cfg = _write(
        tmp_path / "fit.yaml",
        {
            "seed_everything": 0,
            "trainer": _trainer(
                tmp_path,
                max_steps=3,
                limit_val_batches=1,
                logger={
                    "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
                    "init_args": {"save_dir": str(tmp_path / "tb"), "name": "rm"},
                },
            ),
            "model": {
                "class_path": "pargs.lit.RewardModule",
                "init_args": {
                    "model": {"path": str(model_dirs["reference"])},
                    "objective": "partial",
                    "export_dir": str(export),
                },
            },
            "data": {
                "class_path": "pargs.datamodules.PreferenceDataModule",
                "init_args": {
                    "train_file": str(synthetic_dir / "pairs_train.jsonl"),
                    "val_file": str(synthetic_dir / "pairs_val.jsonl"),
                    "tokenizer": str(model_dirs["reference"]),
                    "batch_size": 8,
                },
            },
        },
    )
    run("pargs", "fit", "-c", str(fit_cfg))
    assert (export / "model.safetensors").is_file() and (export / "tokenizer.json").is_file()
    assert AutoConfig.from_pretrained(export).num_labels == 1
    events = list((tmp_path / "tb" / "rm").rglob("events.out.tfevents.*"))
    assert events, "no TensorBoard event file written"
    assert list((tmp_path / "tb" / "rm").rglob("*.ckpt")), "no Lightning checkpoint written"

    out_dir = tmp_path / "preds"
    predict_cfg = _write(
        tmp_path / "predict.yaml",
        {
            "seed_everything": 0,
            "return_predictions": False,
            "trainer": _trainer(
                tmp_path,
                logger=False,
                callbacks=[
                    {"class_path": "pargs.lit.JsonlPredictionWriter", "init_args": {"output_dir": str(out_dir)}}
                ],
            ),
            "model": {
                "class_path": "pargs.lit.DecodeModule",
                "init_args": {
                    "policies": {"reference": {"path": str(model_dirs["reference"])}},
                    "scorers": {"partial": {"model": {"path": str(export)}}},
                    "eval_reward": {"oracle": True},
                    "max_new_tokens": 6,
                    "methods": [
                        {"name": "top-k", "kind": "sample", "top_k": 10, "samples": 2},
                        {"name": "pargs", "kind": "guided", "k": 4, "beta": 1.5, "scorer": "partial"},
                    ],
                },
            },
            "data": {
                "class_path": "pargs.datamodules.PromptDataModule",
                "init_args": {"predict_file": str(synthetic_dir / "prompts_test.jsonl"), "batch_size": 4},
            },
        },
    )
    run("lightning", "predict", "-c", str(predict_cfg))  # the same CLI under the name the Lightning docs use
    lines = [json.loads(x) for x in (out_dir / "predictions-rank0.jsonl").read_text().splitlines()]
    prompts = load_prompts(synthetic_dir / "prompts_test.jsonl")
    keys = {(r["id"], r["method"], r["sample"]) for r in lines}
    expected = {(p["id"], "top-k", s) for p in prompts for s in (0, 1)} | {(p["id"], "pargs", 0) for p in prompts}
    assert keys == expected and len(lines) == len(expected)
    from pargs.tasks.synthetic import oracle_reward

    tok = AutoTokenizer.from_pretrained(model_dirs["reference"])

    def kaplan(ctx: int) -> int:  # one token through a 2-layer, d_model 32 model (policy and RM alike)
        return 2 * 12 * 2 * 32**2 + 2 * 2 * ctx * 32

    for r in lines:
        assert 1 <= r["tokens"] <= 6 and r["decode_seconds"] > 0
        assert r["reward"] == pytest.approx(oracle_reward(r["prompt"], r["response"]), abs=1e-6)
        plain = sum(kaplan(len(encode_prompt(tok, r["prompt"])) + t) for t in range(r["tokens"]))
        assert r["flops"] == plain * (1 if r["method"] == "top-k" else 1 + 4)  # pargs: + k = 4 RM tokens a step
    # running again finds everything done and writes nothing new
    run("pargs", "predict", "-c", str(predict_cfg))
    assert len((out_dir / "predictions-rank0.jsonl").read_text().splitlines()) == len(expected)


def test_bad_input_is_a_clear_error_not_a_traceback(tmp_path, model_dirs):
    bad = tmp_path / "pairs.jsonl"
    bad.write_text('{"id": "a", "prompt": "p", "chosen": "c"}\n')
    cfg = _write(
        tmp_path / "fit.yaml",
        {
            "trainer": _trainer(tmp_path, max_steps=1, logger=False),
            "model": {
                "class_path": "pargs.lit.RewardModule",
                "init_args": {"model": {"path": str(model_dirs["reference"])}},
            },
            "data": {
                "class_path": "pargs.datamodules.PreferenceDataModule",
                "init_args": {"train_file": str(bad), "tokenizer": str(model_dirs["reference"])},
            },
        },
    )
    proc = run("pargs", "fit", "-c", str(cfg), check=False)
    assert proc.returncode == 1
    assert f"{bad}, line 1: field 'rejected' is missing" in proc.stderr
    assert "Traceback" not in proc.stderr
