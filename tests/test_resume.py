"""Runs that get interrupted finish the job: training resumes exactly, prediction after a SIGKILL
neither loses nor repeats a line, and prediction split over two processes equals one process."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from pargs.cli import lightning_cli
from tests.helpers import Interrupted, assert_same_predictions
from tests.subprocesses import ROOT, run_pargs

MODULES = {
    "reward": {"class_path": "pargs.lit.RewardModule", "init_args": {"lr": 1e-3, "warmup_steps": 2}},
    # the precomputed reference log-probabilities live in the checkpoint: a resumed run must not recompute them
    "dpo-precompute": {
        "class_path": "pargs.lit.DPOModule",
        "init_args": {"lr": 1e-3, "warmup_steps": 2, "reference_logprobs": "precompute"},
    },
    "dpo-online": {"class_path": "pargs.lit.DPOModule", "init_args": {"lr": 1e-3, "warmup_steps": 2}},
    "value": {"class_path": "pargs.lit.ValueModule", "init_args": {"lr": 1e-3, "warmup_steps": 2}},
    # manual optimisation, sampled rollouts and a value head: one update per iteration of 4 prompts
    "ppo": {
        "class_path": "pargs.lit.PPOModule",
        "init_args": {
            "lr": 1e-3,
            "warmup_steps": 2,
            "reward": {"oracle": True},
            "ppo_epochs": 1,
            "minibatch_size": 4,
            "max_new_tokens": 6,
        },
    },
}


def _rollouts(synthetic_dir, path):
    """64 scored responses in the rollout schema (the CD-FUDGE value model's training data)."""
    from pargs.tasks.synthetic import oracle_reward

    lines = (synthetic_dir / "sft_train.jsonl").read_text().splitlines()[:64]
    recs = [dict(r, reward=oracle_reward(r["prompt"], r["response"])) for r in map(json.loads, lines)]
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return path


def _fit_config(
    tmp_path,
    synthetic_dir,
    model_dirs,
    losses,
    stop_at=None,
    module="reward",
    checkpoint=None,
    validate=0.0,
    max_epochs=None,
    max_steps=None,
    pairs=None,
):
    """A fit of 11 steps (or ``max_epochs``, or both limits) checkpointing every step (or as ``checkpoint`` says)
    into ``tmp_path/ckpt``; ``validate``: Lightning's ``val_check_interval`` on the held-out pairs (0: none);
    ``pairs``: train on the first ``pairs`` training pairs only (8 per batch)."""
    every = {"every_n_train_steps": 1} if checkpoint is None else checkpoint
    callbacks = [
        {
            "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
            "init_args": {"dirpath": str(tmp_path / "ckpt"), "save_last": True, **every},
        },
        {"class_path": "tests.helpers.RecordLosses", "init_args": {"path": str(losses)}},
    ]
    if validate:
        callbacks.append(
            {
                "class_path": "tests.helpers.RecordValidation",
                "init_args": {"path": str(losses.with_name(losses.name.replace("losses", "validation")))},
            }
        )
    if stop_at:
        callbacks.append({"class_path": "tests.helpers.StopTrainingAt", "init_args": {"step": stop_at}})
    length = {"max_steps": 11} if max_epochs is None else {"max_epochs": max_epochs}
    if max_steps is not None:
        length["max_steps"] = max_steps
    cfg = {
        "seed_everything": 0,
        "trainer": {
            "accelerator": "cpu",
            "devices": 1,
            **length,
            "logger": False,
            "callbacks": callbacks,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "num_sanity_val_steps": 0,
            "limit_val_batches": 1.0 if validate else 0,
            "val_check_interval": validate or 1.0,
            "default_root_dir": str(tmp_path),
        },
        "model": {
            "class_path": MODULES[module]["class_path"],
            "init_args": {
                **MODULES[module]["init_args"],
                "model": {"path": str(model_dirs["reference"])},
                "export_dir": str(tmp_path / "export"),
            },
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
    tmp_path.mkdir(exist_ok=True)
    if pairs is not None:
        subset = tmp_path / "pairs_train.jsonl"
        subset.write_text("".join((synthetic_dir / "pairs_train.jsonl").read_text().splitlines(True)[:pairs]))
        cfg["data"]["init_args"]["train_file"] = str(subset)
    if validate:
        cfg["data"]["init_args"]["val_file"] = str(synthetic_dir / "pairs_val.jsonl")
    if module == "ppo":
        cfg["data"] = {
            "class_path": "pargs.datamodules.PromptDataModule",
            "init_args": {"train_file": str(synthetic_dir / "prompts_train.jsonl"), "batch_size": 4},
        }
    if module == "value":
        cfg["data"] = {
            "class_path": "pargs.datamodules.RolloutDataModule",
            "init_args": {
                "train_file": str(_rollouts(synthetic_dir, tmp_path / "rollouts.jsonl")),
                "tokenizer": str(model_dirs["reference"]),
                "batch_size": 8,
            },
        }
    path = tmp_path / ("stop.yaml" if stop_at else "fit.yaml")
    path.write_text(yaml.safe_dump(cfg))
    return path


def _losses(path):
    return {r["step"]: r["loss"] for r in map(json.loads, path.read_text().splitlines())}


@pytest.mark.parametrize("module", list(MODULES))
def test_fit_resumes_with_the_same_data_order_optimizer_schedule_and_rng(tmp_path, synthetic_dir, model_dirs, module):
    # 64 pairs / 8 = 8 batches per epoch: the interruption at step 6 is mid-epoch, and the run crosses an epoch
    whole = tmp_path / "whole"
    lightning_cli(
        ["fit", "-c", str(_fit_config(whole, synthetic_dir, model_dirs, whole / "losses.jsonl", module=module))]
    )
    cut = tmp_path / "cut"
    with pytest.raises(Interrupted):
        lightning_cli(
            [
                "fit",
                "-c",
                str(_fit_config(cut, synthetic_dir, model_dirs, cut / "losses.jsonl", stop_at=6, module=module)),
            ]
        )
    lightning_cli(
        [
            "fit",
            "-c",
            str(_fit_config(cut, synthetic_dir, model_dirs, cut / "losses.jsonl", module=module)),
            "--ckpt_path",
            "last",
        ]
    )
    uninterrupted, resumed = _losses(whole / "losses.jsonl"), _losses(cut / "losses.jsonl")
    assert sorted(uninterrupted) == list(range(1, 12)) and sorted(resumed) == list(range(1, 12))
    assert resumed == uninterrupted  # dropout is on: equal losses need the same RNG stream too
    a, b = load_file(whole / "export" / "model.safetensors"), load_file(cut / "export" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# 32 pairs / 8 = 4 batches per epoch. The limits: max_epochs 3 (12 steps) alone, or with max_steps 10, which stops
# the run inside its third epoch (the case of issue 20: with max_steps set Lightning restores loops otherwise).
LIMITS = {"max_epochs": {"max_epochs": 3}, "max_epochs+max_steps": {"max_epochs": 3, "max_steps": 10}}
# The checkpoints the shipped configs write: ModelCheckpoint with save_last (quickstart, baselines: at each epoch's
# end) or with every_n_train_steps (reward/, with val_check_interval 0.25). Each case: (checkpoint callback's
# arguments, val_check_interval, the step the run is stopped at, the step of its last.ckpt, whether that checkpoint
# was saved before its step's validation ran)
RESUME_POINTS = {
    # the quickstart's: on_train_epoch_end, after the epoch's validation
    "epoch-end": ({}, 1.0, 6, 4, False),
    # a step checkpoint of the epoch's last batch (on_train_batch_end, before the epoch's validation and its end)
    "every-4-steps-on-the-last-batch": ({"every_n_train_steps": 4}, 1.0, 6, 4, True),
    # a step checkpoint inside the second epoch
    "every-3-steps-mid-epoch": ({"every_n_train_steps": 3}, 1.0, 8, 6, False),
    # a step checkpoint on a batch that a mid-epoch validation follows
    "every-3-steps-before-a-validation": ({"every_n_train_steps": 3}, 0.5, 8, 6, True),
    # a checkpoint taken when a mid-epoch validation ends
    "mid-epoch-validation": ({}, 0.5, 8, 6, False),
    # a checkpoint taken when the epoch's last validation ends (before on_train_epoch_end)
    "epoch-end-validation": ({}, 0.5, 6, 4, False),
}


def _steps(path):
    """The per-step records of a run, in the order they were trained."""
    return [json.loads(line) for line in path.read_text().splitlines()]


def _validations(run, name="validation.jsonl"):
    """``{(epoch, step): val/loss}`` of a run's validations; a validation run twice fails."""
    records = [json.loads(line) for line in (run / name).read_text().splitlines()]
    out = {(r["epoch"], r["step"]): r["val/loss"] for r in records}
    assert len(out) == len(records), f"a validation ran twice: {records}"
    return out


@pytest.fixture(scope="module")
def uninterrupted_fit(tmp_path_factory, synthetic_dir, model_dirs):
    """``run(limits)``: the directory of an uninterrupted run with those limits, validated twice per epoch (how
    often it checkpoints or validates does not change the training: validation draws no random numbers)."""
    runs = {}

    def run(limits):
        if limits not in runs:
            out = tmp_path_factory.mktemp("uninterrupted")
            losses = out / "losses.jsonl"
            cfg = _fit_config(out, synthetic_dir, model_dirs, losses, validate=0.5, pairs=32, **LIMITS[limits])
            lightning_cli(["fit", "-c", str(cfg)])
            runs[limits] = out
        return runs[limits]

    return run


@pytest.mark.parametrize("case", list(RESUME_POINTS))
@pytest.mark.parametrize("limits", list(LIMITS))
def test_fit_resumed_from_any_shipped_checkpoint_trains_and_validates_the_uninterrupted_steps(
    tmp_path, synthetic_dir, model_dirs, uninterrupted_fit, limits, case
):
    """The resumed run alone trains each step after the checkpoint once, with the uninterrupted run's epoch, loss
    and logger step, runs each validation the checkpoint had not seen, and exports the same weights.

    Before pargs.lit.resume_point: with max_steps set, a run resumed from an end-of-epoch checkpoint ended that
    epoch a second time, trained the next one in another epoch's data order and stopped with "max_epochs
    reached" early; and a validation due after a step checkpoint was skipped (issue 20)."""
    checkpoint, validate, stop_at, saved_at, before_validation = RESUME_POINTS[case]

    def config(run, stop_at=None):
        return _fit_config(
            tmp_path,
            synthetic_dir,
            model_dirs,
            tmp_path / f"{run}-losses.jsonl",
            stop_at=stop_at,
            checkpoint=checkpoint,
            validate=validate,
            pairs=32,
            **LIMITS[limits],
        )

    with pytest.raises(Interrupted):
        lightning_cli(["fit", "-c", str(config("stopped", stop_at=stop_at))])
    assert torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=True)["global_step"] == saved_at
    lightning_cli(["fit", "-c", str(config("resumed")), "--ckpt_path", "last"])
    whole = uninterrupted_fit(limits)
    steps = _steps(whole / "losses.jsonl")
    last = LIMITS[limits].get("max_steps", 12)
    assert [r["step"] for r in steps] == list(range(1, last + 1))
    # each remaining step once, in order (a step run twice or skipped shows), in the same epoch, with the same loss
    # and logger step: the same seed on CPU in float32 repeats a run bit for bit, so the floats are compared exactly
    assert _steps(tmp_path / "resumed-losses.jsonl") == steps[saved_at:]
    validations = _validations(whole)
    assert sorted(validations) == [((s - 1) // 4, s) for s in range(2, last + 1, 2)]
    pending = {
        (epoch, step): loss
        for (epoch, step), loss in validations.items()
        if (step > saved_at or (step == saved_at and before_validation)) and (validate == 0.5 or step % 4 == 0)
    }
    assert _validations(tmp_path, "resumed-validation.jsonl") == pending
    a, b = (load_file(run / "export" / "model.safetensors") for run in (whole, tmp_path))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # the resumed run's own last.ckpt counts its epochs consistently (before: processed 3, started 2, completed 1)
    epochs = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=True)["loops"]["fit_loop"]["epoch_progress"]
    ready, started, processed, completed = (epochs["total"][k] for k in ("ready", "started", "processed", "completed"))
    assert ready == started >= processed >= completed >= started - 1


def test_a_shipped_fit_config_resumes_with_ckpt_path_last(tmp_path, synthetic_dir):
    """lightning_configs/quickstart/sft.yaml, run for one epoch of 2 steps, then again for two epochs with
    ``--ckpt_path last``: the second run restores last.ckpt and trains only the second epoch."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    shutil.copytree(synthetic_dir, tmp_path / "data")
    config = tmp_path / "sft.yaml"
    config.write_text(
        (ROOT / "lightning_configs" / "quickstart" / "sft.yaml").read_text().replace("runs/quickstart", str(tmp_path))
    )
    tiny = [
        "--trainer.accelerator=cpu",
        "--trainer.limit_train_batches=2",
        "--trainer.limit_val_batches=1",
        "--trainer.log_every_n_steps=1",
        "--trainer.enable_progress_bar=false",
    ]
    first = run_pargs("fit", "-c", str(config), *tiny, "--trainer.max_epochs=1")
    assert first.returncode == 0, first.stderr[-3000:]
    last = tmp_path / "checkpoints" / "sft" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == 2
    second = run_pargs("fit", "-c", str(config), *tiny, "--trainer.max_epochs=2", "--ckpt_path", "last")
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"Restored all states from the checkpoint at {last}" in second.stderr
    assert torch.load(last, weights_only=True)["global_step"] == 4

    def logged_steps(version):
        events = EventAccumulator(str(tmp_path / "tensorboard" / "sft" / version))
        events.Reload()
        return [e.step for e in events.Scalars("train/loss")]

    assert logged_steps("version_1") == [s + 2 for s in logged_steps("version_0")]  # continued, not restarted


def test_the_shipped_reward_config_resumed_from_its_epoch_end_checkpoint_with_max_steps_trains_every_step(
    tmp_path, synthetic_dir, model_dirs
):
    """Issue 20's case: lightning_configs/quickstart/reward_partial.yaml copied as shipped (last.ckpt at each
    epoch's end), its batch of 32 on 64 pairs (2 steps per epoch), max_epochs 3 and max_steps 5. Stopped after
    the first epoch's checkpoint and resumed with ``pargs fit --ckpt_path last``, it trains to step 5 and exports
    the uninterrupted run's weights; it used to stop with "max_epochs=3 reached" at step 4, exit 0."""
    shipped = (ROOT / "lightning_configs" / "quickstart" / "reward_partial.yaml").read_text()
    limits = ["--trainer.accelerator=cpu", "--trainer.max_epochs=3", "--trainer.max_steps=5"]

    def config(run):
        root = tmp_path / run
        shutil.copytree(synthetic_dir, root / "data")
        shutil.copytree(model_dirs["reference"], root / "models" / "reference")
        (root / "reward_partial.yaml").write_text(shipped.replace("runs/quickstart", str(root)))
        return str(root / "reward_partial.yaml")

    # every run in a subprocess: under pytest-xdist this process trains on 1 thread, a subprocess on all cores,
    # and another thread count rounds the float sums differently (the weights are compared bit for bit)
    whole, cut = config("whole"), config("cut")
    assert run_pargs("fit", "-c", whole, *limits).returncode == 0
    stop = '{"class_path": "tests.helpers.StopTrainingAt", "init_args": {"step": 3}}'
    interrupted = run_pargs("fit", "-c", cut, *limits, f"--trainer.callbacks+={stop}")
    assert interrupted.returncode != 0 and "Interrupted" in interrupted.stderr, interrupted.stderr[-3000:]
    last = tmp_path / "cut" / "checkpoints" / "reward_partial" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == 2
    resumed = run_pargs("fit", "-c", cut, *limits, "--ckpt_path", "last")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "`max_steps=5` reached" in resumed.stderr and "max_epochs" not in resumed.stderr
    assert torch.load(last, weights_only=True)["global_step"] == 5
    a, b = (load_file(tmp_path / run / "models" / "rm_partial" / "model.safetensors") for run in ("whole", "cut"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # CPU, float32, one seed: bit for bit


def _predict_config(tmp_path, synthetic_dir, model_dirs, out_dir, devices=1, kill_after=None):
    callbacks = [{"class_path": "pargs.lit.JsonlPredictionWriter", "init_args": {"output_dir": str(out_dir)}}]
    if kill_after is not None:
        callbacks.append(
            {
                "class_path": "tests.helpers.KillDuringPredict",
                "init_args": {"output_dir": str(out_dir), "batch": kill_after},
            }
        )
    trainer = {
        "accelerator": "cpu",
        "devices": devices,
        "logger": False,
        "callbacks": callbacks,
        "enable_progress_bar": False,
        "default_root_dir": str(tmp_path),
    }
    if devices > 1:
        trainer["strategy"] = "ddp"
    cfg = {
        "seed_everything": 0,
        "return_predictions": False,
        "trainer": trainer,
        "model": {
            "class_path": "pargs.lit.DecodeModule",
            "init_args": {
                "policies": {"reference": {"path": str(model_dirs["reference"])}},
                "scorers": {"rm": {"model": {"path": str(model_dirs["rm"])}}},
                "eval_reward": {"oracle": True},
                "max_new_tokens": 8,
                "methods": [
                    {"name": "top-k", "kind": "sample", "top_k": 10, "samples": 2},
                    {"name": "pargs", "kind": "guided", "k": 5, "scorer": "rm"},
                    {"name": "bon", "kind": "best_of_n", "n": 3, "top_k": 10, "scorer": "rm"},
                ],
            },
        },
        "data": {
            "class_path": "pargs.datamodules.PromptDataModule",
            "init_args": {"predict_file": str(synthetic_dir / "prompts_test.jsonl"), "batch_size": 2},
        },
    }
    path = tmp_path / f"predict-{out_dir.name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _predict(config, check=True):
    proc = run_pargs("predict", "-c", str(config))
    if check and proc.returncode != 0:
        raise AssertionError(proc.stderr[-4000:])
    return proc


def _records(out_dir):
    lines = []
    for path in sorted(Path(out_dir).glob("predictions-rank*.jsonl")):
        text = path.read_text()
        assert text.endswith("\n"), f"{path} ends with a torn line"
        lines += [json.loads(x) for x in text.splitlines()]
    keys = [(r["id"], r["method"], r["sample"]) for r in lines]
    assert len(keys) == len(set(keys)), "a prediction was written twice"
    return {k: {f: v for f, v in r.items() if f != "decode_seconds"} for k, r in zip(keys, lines)}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, synthetic_dir, model_dirs):
    tmp = tmp_path_factory.mktemp("predict")
    _predict(_predict_config(tmp, synthetic_dir, model_dirs, tmp / "whole"))
    return _records(tmp / "whole")


def test_predict_killed_mid_write_resumes_to_the_same_output(tmp_path, synthetic_dir, model_dirs, uninterrupted):
    out = tmp_path / "killed"
    proc = _predict(_predict_config(tmp_path, synthetic_dir, model_dirs, out, kill_after=1), check=False)
    assert proc.returncode == -9  # SIGKILL
    partial = (out / "predictions-rank0.jsonl").read_text()
    assert not partial.endswith("\n") and 0 < partial.count("\n") < len(uninterrupted)
    _predict(_predict_config(tmp_path, synthetic_dir, model_dirs, out))
    assert_same_predictions(_records(out), uninterrupted)  # the resumed batch holds fewer rows: other padding
    assert len(uninterrupted) == 6 * (2 + 1 + 1)


def test_predict_on_two_processes_equals_one(tmp_path, synthetic_dir, model_dirs, uninterrupted):
    out = tmp_path / "ddp"
    _predict(_predict_config(tmp_path, synthetic_dir, model_dirs, out, devices=2))
    assert len(list(out.glob("predictions-rank*.jsonl"))) == 2
    assert_same_predictions(_records(out), uninterrupted)  # each process pads its own batches


def test_same_seed_gives_the_same_trained_weights(tmp_path, synthetic_dir, model_dirs):
    from safetensors.torch import load_file

    exports = []
    for run in ("a", "b"):
        cfg_path = _fit_config(tmp_path / run, synthetic_dir, model_dirs, tmp_path / run / "losses.jsonl")
        cfg = yaml.safe_load(cfg_path.read_text())
        cfg["trainer"]["max_steps"] = 4
        cfg["model"]["init_args"]["export_dir"] = str(tmp_path / run / "export")
        cfg_path.write_text(yaml.safe_dump(cfg))
        lightning_cli(["fit", "-c", str(cfg_path)])
        exports.append(load_file(tmp_path / run / "export" / "model.safetensors"))
    assert exports[0].keys() == exports[1].keys()
    for name in exports[0]:
        assert exports[0][name].equal(exports[1][name]), name
