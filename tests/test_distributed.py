"""Reward-model and DPO training on several processes agree with one process (CPU, gloo).

DDP and FSDP2 (``ModelParallelStrategy`` + ``fully_shard`` per block) run as 2 CPU processes with a
per-process batch of 4 pairs; the reference is one process with batches of 8. The resumable sampler
gives both the same permutation, so step k sees the same 8 pairs either way, and with the ``full``
reward objective, the ``partial`` one with pair weighting and the DPO loss (every pair weighs the same)
the averaged gradients are the same:
the exported weights must agree to float precision. DDP runs train in float64 (``precision: 64-true``): two
processes sum their gradients in another order than one, and Adam divides each gradient by its own running
size, so a float32 rounding difference in a near-zero gradient grows to a visible weight difference after a
few steps (seen on an Intel Xeon: 1 failure in 3 suite runs at a 2e-5 tolerance; 1e-6 apart otherwise); in
float64 the runs agree to ~2e-15, so any real difference in what is averaged stands out. FSDP2
(``ModelParallelStrategy``) refuses 64-true, so its runs train in float32 against a float32 reference, with
a float32 tolerance. (A little reward
centring keeps every gradient away from exactly zero: the final layer norm's bias gets +g from the chosen
and -g from the rejected response, and Adam would blow the float noise of a zero gradient up to a full
learning-rate step.)
Lightning's ``strategy="fsdp"`` needs GPUs (one is enough): that test is marked and skipped without one,
never faked.
"""

from __future__ import annotations

import pytest
import torch
import yaml
from safetensors.torch import load_file

from tests.subprocesses import run_pargs

NO_DROPOUT = {"resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0}
FSDP2 = {
    "class_path": "lightning.pytorch.strategies.ModelParallelStrategy",
    "init_args": {"data_parallel_size": 2, "tensor_parallel_size": 1},
}


def _reward(model_dirs, fsdp2=False, objective="full"):
    # the partial objective with pair weighting: every pair weighs the same, as with the full objective
    return {
        "class_path": "pargs.lit.RewardModule",
        "init_args": {
            "model": {"path": str(model_dirs["reference"]), "config": NO_DROPOUT},
            "objective": objective,
            "weighting": "pair",
            "lr": 1e-3,
            "center_coef": 0.01,
            "fsdp2": fsdp2,
        },
    }


def _dpo(model_dirs, fsdp2=False):
    return {
        "class_path": "pargs.lit.DPOModule",
        "init_args": {
            "model": {"path": str(model_dirs["reference"])},
            "reference_logprobs": "precompute",
            "lr": 1e-3,
            "fsdp2": fsdp2,
        },
    }


def _fit(
    tmp_path,
    name,
    synthetic_dir,
    model_dirs,
    devices,
    batch_size,
    model,
    strategy=None,
    accelerator="cpu",
    precision="32-true",
    train_file=None,
):
    out = tmp_path / name
    trainer = {
        "accelerator": accelerator,
        "devices": devices,
        "max_steps": 3,
        "logger": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "limit_val_batches": 0,
        "num_sanity_val_steps": 0,
        "default_root_dir": str(out),
        "precision": precision,
        "callbacks": [
            {
                "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                "init_args": {"dirpath": str(out / "ckpt"), "save_last": True},
            }
        ],
    }
    if strategy is not None:
        trainer["strategy"] = strategy
    cfg = {
        "seed_everything": 0,
        "trainer": trainer,
        "model": {**model, "init_args": {**model["init_args"], "export_dir": str(out / "export")}},
        "data": {
            "class_path": "pargs.datamodules.PreferenceDataModule",
            "init_args": {
                "train_file": str(train_file or synthetic_dir / "pairs_train.jsonl"),
                "tokenizer": str(model_dirs["reference"]),
                "batch_size": batch_size,
            },
        },
    }
    out.mkdir(parents=True)
    (out / "fit.yaml").write_text(yaml.safe_dump(cfg))
    proc = run_pargs("fit", "-c", str(out / "fit.yaml"))
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out


def _single_runs(tmp_path_factory, fit):
    """``{strategy: weights}`` of the one-process reference in that strategy's precision, each trained once."""
    runs: dict[str, dict] = {}

    def weights(strategy: str) -> dict:
        precision = PRECISION[strategy]
        if precision not in runs:
            out = fit(tmp_path_factory.mktemp(f"single-{precision}"), precision)
            runs[precision] = load_file(out / "export" / "model.safetensors")
        return runs[precision]

    return weights


@pytest.fixture(scope="module")
def single(tmp_path_factory, synthetic_dir, model_dirs):
    return _single_runs(
        tmp_path_factory,
        lambda tmp, precision: _fit(
            tmp,
            "single",
            synthetic_dir,
            model_dirs,
            devices=1,
            batch_size=8,
            model=_reward(model_dirs),
            precision=precision,
        ),
    )


#: the precision each strategy trains in (module docstring) and the tolerance of its weights against one process
PRECISION = {"ddp": "64-true", "fsdp2": "32-true"}
TOLERANCE = {"64-true": {"atol": 1e-10, "rtol": 1e-8}, "32-true": {"atol": 2e-5, "rtol": 1e-4}}


def _assert_same_weights(a: dict, b: dict, strategy: str) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].dtype == b[name].dtype == (torch.float64 if PRECISION[strategy] == "64-true" else torch.float32)
        torch.testing.assert_close(
            a[name], b[name], **TOLERANCE[PRECISION[strategy]], msg=lambda m, n=name: f"{n}: {m}"
        )


def test_ddp_on_two_processes_matches_one(tmp_path, synthetic_dir, model_dirs, single):
    out = _fit(
        tmp_path,
        "ddp",
        synthetic_dir,
        model_dirs,
        devices=2,
        batch_size=4,
        model=_reward(model_dirs),
        strategy="ddp",
        precision=PRECISION["ddp"],
    )
    _assert_same_weights(load_file(out / "export" / "model.safetensors"), single("ddp"), "ddp")


def test_ddp_partial_objective_on_two_processes_matches_one(tmp_path, synthetic_dir, model_dirs):
    """The paper's dense prefix loss, the one the project exists for, under DDP."""
    model = _reward(model_dirs, objective="partial")
    one = _fit(tmp_path, "one", synthetic_dir, model_dirs, devices=1, batch_size=8, model=model, precision="64-true")
    two = _fit(
        tmp_path,
        "two",
        synthetic_dir,
        model_dirs,
        devices=2,
        batch_size=4,
        model=model,
        strategy="ddp",
        precision="64-true",
    )
    _assert_same_weights(
        load_file(two / "export" / "model.safetensors"), load_file(one / "export" / "model.safetensors"), "ddp"
    )


def test_fsdp2_on_two_cpu_processes_matches_one_and_saves_sharded_checkpoints(
    tmp_path, synthetic_dir, model_dirs, single
):
    out = _fit(
        tmp_path,
        "fsdp2",
        synthetic_dir,
        model_dirs,
        devices=2,
        batch_size=4,
        model=_reward(model_dirs, fsdp2=True),
        strategy=FSDP2,
        precision=PRECISION["fsdp2"],
    )
    last = out / "ckpt" / "last.ckpt"
    assert last.is_dir() and list(last.glob("*.distcp")), "expected a sharded (distributed) checkpoint directory"
    _assert_same_weights(load_file(out / "export" / "model.safetensors"), single("fsdp2"), "fsdp2")


@pytest.fixture(scope="module")
def dpo_pairs(tmp_path_factory, synthetic_dir):
    """60 pairs: 15 batches of 4 for the precompute pass, so one rank's share is a batch short and must
    still join the 8th round of forward passes (sharded weights are gathered in each) or the run hangs."""
    pairs = tmp_path_factory.mktemp("dpo") / "pairs_60.jsonl"
    pairs.write_text("".join((synthetic_dir / "pairs_train.jsonl").read_text().splitlines(keepends=True)[:60]))
    return pairs


@pytest.fixture(scope="module")
def dpo_single(tmp_path_factory, synthetic_dir, model_dirs, dpo_pairs):
    return _single_runs(
        tmp_path_factory,
        lambda tmp, precision: _fit(
            tmp,
            "single",
            synthetic_dir,
            model_dirs,
            devices=1,
            batch_size=8,
            model=_dpo(model_dirs),
            train_file=dpo_pairs,
            precision=precision,
        ),
    )


@pytest.mark.parametrize("strategy", ["ddp", "fsdp2"])
def test_dpo_on_two_cpu_processes_matches_one(tmp_path, synthetic_dir, model_dirs, dpo_pairs, dpo_single, strategy):
    """Reference log-probabilities are precomputed by the (sharded) policy, each rank scoring its share."""
    out = _fit(
        tmp_path,
        strategy,
        synthetic_dir,
        model_dirs,
        devices=2,
        batch_size=4,
        model=_dpo(model_dirs, fsdp2=strategy == "fsdp2"),
        strategy=FSDP2 if strategy == "fsdp2" else "ddp",
        train_file=dpo_pairs,
        precision=PRECISION[strategy],
    )
    _assert_same_weights(load_file(out / "export" / "model.safetensors"), dpo_single(strategy), strategy)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="Lightning's strategy='fsdp' needs CUDA devices")
def test_lightning_fsdp_strategy_on_gpus(tmp_path, synthetic_dir, model_dirs, single):
    """FSDP1 (per-block wrap, sharded checkpoints) on the GPUs there are (1 or 2): the export holds every
    weight under its plain name, as the one-process CPU run's does."""
    devices = min(2, torch.cuda.device_count())
    strategy = {
        "class_path": "lightning.pytorch.strategies.FSDPStrategy",
        "init_args": {
            "auto_wrap_policy": ["transformers.models.gpt2.modeling_gpt2.GPT2Block"],
            "state_dict_type": "sharded",
        },
    }
    out = _fit(
        tmp_path,
        "fsdp",
        synthetic_dir,
        model_dirs,
        devices=devices,
        batch_size=8 // devices,
        model=_reward(model_dirs),
        strategy=strategy,
        accelerator="gpu",
        precision="bf16-mixed",
    )
    assert (out / "ckpt" / "last.ckpt").is_dir()
    exported = load_file(out / "export" / "model.safetensors")
    assert exported.keys() == single("fsdp2").keys()
    assert all(torch.isfinite(v).all() for v in exported.values())
