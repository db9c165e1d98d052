"""``--ckpt_path`` mistakes get one line before anything is built or written, and a resumed run follows
its config: a missing, truncated or foreign checkpoint, ``last`` with nothing to resume, a config that
changed since the checkpoint, a data file that does not parse (pargs/lit/preflight.py)."""

from __future__ import annotations

import datetime
import json
import shutil

import pytest
import torch
import yaml

from pargs.cli import lightning_cli, main
from pargs.errors import ConfigError
from tests.subprocesses import run_pargs
from tests.test_bad_input import _predict
from tests.test_resume import _fit_config


@pytest.fixture(scope="module")
def trained(tmp_path_factory, synthetic_dir, model_dirs):
    """A RewardModule fit of 2 steps: ckpt/last.ckpt and ckpt/epoch=0-step=2.ckpt, and its export."""
    run = tmp_path_factory.mktemp("trained")
    config = _fit_config(run, synthetic_dir, model_dirs, run / "losses.jsonl")
    lightning_cli(["fit", "-c", str(config), "--trainer.max_steps", "2"])
    assert sorted(p.name for p in (run / "ckpt").glob("*.ckpt")) == ["epoch=0-step=2.ckpt", "last.ckpt"]
    return run


def _config(tmp_path, synthetic_dir, model_dirs, tensorboard=False, dirpath=True, **kw):
    """test_resume's fit config, optionally logging to TensorBoard under tmp_path/tb and checkpointing into
    the logger's version folder (no dirpath)."""
    path = _fit_config(tmp_path, synthetic_dir, model_dirs, tmp_path / "losses.jsonl", **kw)
    cfg = yaml.safe_load(path.read_text())
    if tensorboard:
        cfg["trainer"]["logger"] = {
            "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
            "init_args": {"save_dir": str(tmp_path / "tb"), "name": "rm"},
        }
    if not dirpath:
        del cfg["trainer"]["callbacks"][0]["init_args"]["dirpath"]
    path.write_text(yaml.safe_dump(cfg))
    return path


def _error(args, capsys, *needles):
    """Run the command line; it must fail with one error line holding every needle, and no traceback."""
    rc = main(args)
    err = capsys.readouterr().err
    assert rc == 1, err
    assert "Traceback" not in err and "No checkpoint will be loaded" not in err, err
    (line,) = [x for x in err.splitlines() if x.startswith("pargs: error:")]
    for needle in needles:
        assert needle in line, f"{needle!r} not in:\n{line}"
    print(line)  # shown by pytest -rP
    return line


def _files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_ckpt_path_last_without_a_checkpoint_is_an_error_naming_the_directory(
    tmp_path, synthetic_dir, model_dirs, capsys
):
    config = _config(tmp_path, synthetic_dir, model_dirs, tensorboard=True)
    before = _files(tmp_path)
    _error(
        ["fit", "-c", str(config), "--ckpt_path", "last"],
        capsys,
        f"--ckpt_path last: no checkpoint to resume from in {tmp_path / 'ckpt'}",
        "drop --ckpt_path",
    )
    assert _files(tmp_path) == before  # no config.yaml, no TensorBoard run


def test_ckpt_path_last_says_why_a_checkpoint_without_dirpath_is_never_found(
    tmp_path, synthetic_dir, model_dirs, capsys
):
    # a previous run saved last.ckpt under version_0; the new run would look in version_1
    (tmp_path / "tb" / "rm" / "version_0" / "checkpoints").mkdir(parents=True)
    (tmp_path / "tb" / "rm" / "version_0" / "checkpoints" / "last.ckpt").write_bytes(b"")
    config = _config(tmp_path, synthetic_dir, model_dirs, tensorboard=True, dirpath=False)
    _error(
        ["fit", "-c", str(config), "--ckpt_path", "last"],
        capsys,
        f"no checkpoint to resume from in {tmp_path / 'tb' / 'rm' / 'version_1' / 'checkpoints'}",
        "has no dirpath, so every run saves under a new logger version",
    )


def test_a_missing_checkpoint_file_writes_nothing(tmp_path, synthetic_dir, model_dirs, trained, capsys):
    shutil.copytree(trained / "ckpt", tmp_path / "ckpt")
    config = _config(tmp_path, synthetic_dir, model_dirs, tensorboard=True)
    before = _files(tmp_path)
    missing = tmp_path / "ckpt" / "epoch=0-step=9.ckpt"
    _error(
        ["fit", "-c", str(config), "--ckpt_path", str(missing)],
        capsys,
        f"checkpoint {missing} (--ckpt_path) does not exist",
        "epoch=0-step=2.ckpt, last.ckpt",
    )
    assert _files(tmp_path) == before


@pytest.mark.parametrize("given", ["path", "last"])
def test_a_truncated_checkpoint_names_the_file_and_the_earlier_ones(
    tmp_path, synthetic_dir, model_dirs, trained, capsys, given
):
    shutil.copytree(trained / "ckpt", tmp_path / "ckpt")
    last = tmp_path / "ckpt" / "last.ckpt"
    data = last.read_bytes()
    last.write_bytes(data[: len(data) // 2])  # what a run killed while saving leaves
    config = _config(tmp_path, synthetic_dir, model_dirs)
    before = _files(tmp_path)
    _error(
        ["fit", "-c", str(config), "--ckpt_path", str(last) if given == "path" else "last"],
        capsys,
        f"checkpoint {last} cannot be read",
        "truncated or corrupt",
        f"resume from an earlier checkpoint: --ckpt_path {tmp_path / 'ckpt' / 'epoch=0-step=2.ckpt'}",
    )
    assert _files(tmp_path) == before


def test_a_checkpoint_holding_pickled_objects_says_how_to_load_it_if_trusted(
    tmp_path, synthetic_dir, model_dirs, capsys
):
    pickled = tmp_path / "pickled.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"when": datetime.date(2024, 1, 1)}}, pickled)
    config = _config(tmp_path, synthetic_dir, model_dirs)
    _error(
        ["fit", "-c", str(config), "--ckpt_path", str(pickled)],
        capsys,
        f"checkpoint {pickled} holds objects other than plain data",
        "add --weights_only false",
    )


@pytest.mark.parametrize("command", ["predict", "fit-dpo"])
def test_a_checkpoint_of_another_module_class_is_refused_before_anything_is_built(
    tmp_path, synthetic_dir, model_dirs, trained, capsys, command
):
    if command == "predict":
        args, configured = _predict(tmp_path, model_dirs, synthetic_dir / "prompts_test.jsonl"), "DecodeModule"
    else:
        config = _config(tmp_path, synthetic_dir, model_dirs, module="dpo-online")
        args, configured = ["fit", "-c", str(config)], "DPOModule"
    before = _files(tmp_path)
    _error(
        [*args, "--ckpt_path", str(trained / "ckpt" / "last.ckpt")],
        capsys,
        "holds a pargs.lit.RewardModule but the config's model is a pargs.lit.",
        f"{configured}: give a checkpoint",
        "drop --ckpt_path",
    )
    assert _files(tmp_path) == before  # not even the prediction writer's output folder


@pytest.mark.parametrize("class_path", ["planted.Module", "os.system"])
def test_the_class_a_checkpoint_names_is_compared_as_a_name_and_never_imported(
    tmp_path, synthetic_dir, model_dirs, class_path
):
    """Before: ``planted.Module`` imported ``planted.py`` from the current directory (its code ran), and
    ``os.system`` ended in a TypeError traceback."""
    (tmp_path / "planted.py").write_text(f"open({str(tmp_path / 'ran')!r}, 'w').close()\nModule = object\n")
    ckpt = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"_class_path": class_path}}, ckpt)
    args = _predict(tmp_path, model_dirs, synthetic_dir / "prompts_test.jsonl")
    done = run_pargs(*args, "--ckpt_path", str(ckpt), cwd=tmp_path)
    assert done.returncode == 1, done.stderr[-3000:]
    assert done.stderr.strip().splitlines()[-1] == (
        f"pargs: error: checkpoint {ckpt} holds a {class_path} but the config's model is a "
        f"pargs.lit.decode.DecodeModule: give a checkpoint of a DecodeModule (or a config for a "
        f"{class_path.rpartition('.')[2]}), or drop --ckpt_path"
    )
    assert "Traceback" not in done.stderr and not (tmp_path / "ran").exists()


def test_a_checkpoint_of_a_base_class_is_accepted_by_a_subclass_config(tmp_path):
    """The names compared: the configured class's and its bases', under each package that exports them."""
    from pargs.lit import RewardModule
    from pargs.lit.preflight import check_module_class

    class Tuned(RewardModule):
        pass

    for stored in ("pargs.lit.RewardModule", "pargs.lit.reward.RewardModule", "lightning.pytorch.LightningModule"):
        check_module_class({"hyper_parameters": {"_class_path": stored}}, Tuned, "x.ckpt")
    with pytest.raises(ConfigError, match="holds a pargs.lit.DPOModule but the config's model is a "):
        check_module_class({"hyper_parameters": {"_class_path": "pargs.lit.DPOModule"}}, Tuned, "x.ckpt")


@pytest.mark.parametrize("ckpt", ["copied", "last"])
def test_resuming_a_copied_checkpoint_follows_the_config_and_lists_what_changed(
    tmp_path, synthetic_dir, model_dirs, trained, capsys, ckpt
):
    """``--ckpt_path FILE`` and ``--ckpt_path last`` (the checkpoint copied into this config's dirpath)."""
    other_export = {p.name: p.read_bytes() for p in (trained / "export").iterdir()}
    if ckpt == "last":
        (tmp_path / "ckpt").mkdir()
        shutil.copy(trained / "ckpt" / "last.ckpt", tmp_path / "ckpt" / "last.ckpt")
    else:
        shutil.copy(trained / "ckpt" / "last.ckpt", tmp_path / "copied.ckpt")
    config = _config(tmp_path, synthetic_dir, model_dirs)
    rc = main(
        [
            "fit",
            "-c",
            str(config),
            "--trainer.max_steps",
            "3",
            "--model.init_args.lr",
            "0.002",
            "--data.init_args.batch_size",
            "16",
            "--ckpt_path",
            "last" if ckpt == "last" else str(tmp_path / "copied.ckpt"),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 0, err
    # the current config's export_dir gets the model; the run the checkpoint came from keeps its own
    assert (tmp_path / "export" / "model.safetensors").is_file()
    assert {p.name: p.read_bytes() for p in (trained / "export").iterdir()} == other_export
    steps = [json.loads(x)["step"] for x in (tmp_path / "losses.jsonl").read_text().splitlines()]
    assert steps == [3]  # resumed at step 2
    (warning,) = [x for x in err.splitlines() if "the config differs from checkpoint" in x]
    print(warning)  # shown by pytest -rP
    assert "model.lr: 0.001 -> 0.002" in warning and "data.batch_size: 8 -> 16" in warning, warning
    assert "export_dir" not in warning  # where outputs go is the current config's business


def test_a_bad_data_file_leaves_no_logger_run_behind(tmp_path, synthetic_dir, model_dirs, capsys):
    config = _config(tmp_path, synthetic_dir, model_dirs, tensorboard=True)
    bad = tmp_path / "pairs.jsonl"
    bad.write_text('{"id": "a", "prompt": "p", "chosen": "c", "rejected": \n')
    _error(["fit", "-c", str(config), "--data.init_args.train_file", str(bad)], capsys, str(bad), "line 1")
    assert not (tmp_path / "tb").exists() and not (tmp_path / "config.yaml").exists()
