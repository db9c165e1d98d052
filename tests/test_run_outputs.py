"""A run writes beside its own outputs: a re-run never overwrites or mixes with results it was not asked to
(pargs/lit/run_outputs.py). Through the CLI in subprocesses, as a user runs it."""

from __future__ import annotations

import yaml

from tests.subprocesses import run_pargs


def _fit_config(tmp_path, synthetic_dir, model_dirs):
    """A 2-step reward-model fit with a fixed checkpoint directory (as the shipped configs have) and an export."""
    cfg = {
        "seed_everything": 0,
        "trainer": {
            "accelerator": "cpu",
            "max_steps": 2,
            "logger": False,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "limit_val_batches": 0,
            "default_root_dir": str(tmp_path / "run"),
            "callbacks": [
                {
                    "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                    "init_args": {"dirpath": str(tmp_path / "run" / "checkpoints"), "save_last": True},
                }
            ],
        },
        "model": {
            "class_path": "pargs.lit.RewardModule",
            "init_args": {"model": {"path": str(model_dirs["reference"])}, "export_dir": str(tmp_path / "run" / "rm")},
        },
        "data": {
            "class_path": "pargs.datamodules.PreferenceDataModule",
            "init_args": {
                "train_file": str(synthetic_dir / "pairs_train.jsonl"),
                "tokenizer": str(model_dirs["reference"]),
                "batch_size": 8,
            },
        },
    }
    path = tmp_path / "fit.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _snapshot(folder):
    return {p.relative_to(folder): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


def test_a_fresh_fit_into_an_earlier_runs_directories_is_refused_and_overwrite_replaces_it(
    tmp_path, synthetic_dir, model_dirs
):
    config = _fit_config(tmp_path, synthetic_dir, model_dirs)
    first = run_pargs("fit", "-c", str(config))
    assert first.returncode == 0, first.stderr[-3000:]
    run = tmp_path / "run"
    assert (run / "checkpoints" / "last.ckpt").is_file() and (run / "rm" / "model.safetensors").is_file()
    assert (run / "checkpoints" / "config.yaml").is_file()  # beside its checkpoints (no logger)
    before = _snapshot(run)

    again = run_pargs("fit", "-c", str(config))
    assert again.returncode == 1
    err = again.stderr.strip().splitlines()[-1]
    assert err.startswith(f"pargs: error: {run / 'checkpoints'} holds the checkpoints of an earlier run (")
    assert f"export_dir {run / 'rm'} holds an exported model" in err
    assert "--ckpt_path last" in err and "--overwrite true" in err
    assert _snapshot(run) == before  # nothing written: no last-v1.ckpt, no new config.yaml, the export untouched

    replaced = run_pargs("fit", "-c", str(config), "--overwrite", "true")
    assert replaced.returncode == 0, replaced.stderr[-3000:]
    assert sorted(p.name for p in (run / "checkpoints").glob("*.ckpt")) == sorted(
        p.name for p in before if p.suffix == ".ckpt" and p.parent.name == "checkpoints"
    )  # the same names, no -v1: the earlier run's were removed first
    assert "overwrite: true" not in (run / "checkpoints" / "config.yaml").read_text()  # a runtime choice


def test_predict_into_another_directory_writes_its_config_there_not_into_the_configs_run(
    tmp_path, synthetic_dir, model_dirs
):
    from tests.helpers import predict_yaml

    decode = {
        "policies": {"reference": {"path": str(model_dirs["reference"])}},
        "eval_reward": {"oracle": True},
        "max_new_tokens": 3,
        "methods": [{"preset": "top-k"}],
    }
    config = predict_yaml(tmp_path, decode, {"predict_file": str(synthetic_dir / "prompts_test.jsonl"), "limit": 2})
    (tmp_path / "config.yaml").write_text("# the first run's saved config\n")
    elsewhere = tmp_path / "beta3"
    proc = run_pargs("predict", "-c", str(config), "--predictions", str(elsewhere))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "config.yaml").read_text() == "# the first run's saved config\n"
    saved = yaml.safe_load((elsewhere / "config.yaml").read_text())
    assert saved["trainer"]["callbacks"][0]["init_args"]["output_dir"] == str(elsewhere)
    assert proc.stderr.strip().splitlines()[-1] == (
        f"[pargs] {elsewhere} holds 2 prediction lines (2 decoded by this process); next: pargs report {elsewhere}"
    )
