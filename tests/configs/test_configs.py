"""Every shipped YAML says how to run it, parses, and builds its model, data and trainer.

Paths under ``runs/quickstart`` are pointed at a temporary run directory holding the tiny test task
and models; configs of other folders name Hugging Face models, which the modules only load in
``configure_model``, so building them needs no network.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import lightning as L
import pytest
import yaml
from jsonargparse import ArgumentParser
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.strategies import Strategy

import pargs.datamodules  # noqa: F401
import pargs.lit  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "lightning_configs").rglob("*.yaml"))


class BuildOnlyCLI(LightningCLI):
    """Parses a subcommand's config and builds everything, without running the subcommand."""

    def _run_subcommand(self, subcommand: str) -> None:
        self.ran = subcommand


def build(args):
    return BuildOnlyCLI(
        L.LightningModule,
        L.LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        args=args,
        save_config_callback=None,
        auto_configure_optimizers=False,
    )


def test_configs_are_shipped():
    assert any(p.parent.name == "quickstart" for p in CONFIGS)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, synthetic_dir, model_dirs):
    run = tmp_path_factory.mktemp("run")
    shutil.copytree(synthetic_dir, run / "data")
    for name, src in (("reference", "reference"), ("rm_partial", "rm"), ("rm_full", "rm")):
        shutil.copytree(model_dirs[src], run / "models" / name)
    return run


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(ROOT / "lightning_configs")))
def test_config_header_and_build(path, run_dir, tmp_path):
    text = path.read_text()
    first = text.splitlines()[0]
    rel = path.relative_to(ROOT)
    assert first.startswith("# ") and f"-c {rel}" in first, f"{rel}: first line must show the command that runs it"
    command = first.split()[2] if first.split()[1] in ("pargs", "lightning") else first.split()[1]
    assert command in ("fit", "validate", "test", "predict")
    local = tmp_path / path.name
    local.write_text(text.replace("runs/quickstart", str(run_dir)))
    config = yaml.safe_load(local.read_text())
    overrides = ["--trainer.logger=false"]
    if config["trainer"].get("accelerator") not in (None, "auto", "cpu"):  # GPU configs: build their parts on CPU
        overrides += [
            "--trainer.accelerator=cpu",
            "--trainer.devices=1",
            "--trainer.strategy=auto",
            "--trainer.precision=32-true",
        ]
        strategy = config["trainer"].get("strategy")
        if isinstance(strategy, dict):  # the strategy section itself must still parse and build
            parser = ArgumentParser()
            parser.add_subclass_arguments(Strategy, "strategy")
            built = parser.instantiate(parser.parse_object({"strategy": strategy}))
            assert isinstance(built.strategy, Strategy)
    cli = build([command, "-c", str(local), *overrides])
    assert cli.ran == command
    assert isinstance(cli.model, L.LightningModule) and isinstance(cli.datamodule, L.LightningDataModule)


def _command(path: Path) -> str:
    words = path.read_text().splitlines()[0].split()
    return words[2] if words[1] in ("pargs", "lightning") else words[1]


FIT_CONFIGS = [p for p in CONFIGS if _command(p) == "fit"]


@pytest.mark.parametrize("path", FIT_CONFIGS, ids=lambda p: str(p.relative_to(ROOT / "lightning_configs")))
def test_fit_configs_save_a_last_checkpoint_that_the_next_run_finds(path):
    """``--ckpt_path last`` resumes only if the run saves last.ckpt where the restarted run looks: a fixed
    dirpath, not the logger's version folder (a new one per run)."""
    trainer = yaml.safe_load(path.read_text())["trainer"]
    (checkpoint,) = [c for c in trainer.get("callbacks") or [] if c["class_path"].endswith(".ModelCheckpoint")]
    args = checkpoint["init_args"]
    assert args.get("save_last") is True
    dirpath, root = args.get("dirpath"), trainer["default_root_dir"]
    assert dirpath and dirpath.startswith(root + "/checkpoints/"), dirpath
    logger = trainer.get("logger") or {}
    assert not dirpath.startswith(logger.get("init_args", {}).get("save_dir", "//")), "under the logger's versions"
    # the quickstart's tiny models checkpoint at epoch ends; the large ones every few hundred steps, never each step
    every = args.get("every_n_train_steps")
    assert (not every) if root == "runs/quickstart" else every >= 100


def test_predict_methods_by_preset_parse_through_the_cli(run_dir, tmp_path):
    """``{preset: ..., <overrides>}`` rows build the same methods as the fields written out."""
    config = yaml.safe_load(
        (ROOT / "lightning_configs" / "quickstart" / "predict.yaml")
        .read_text()
        .replace("runs/quickstart", str(run_dir))
    )
    config["model"]["init_args"]["methods"] = [
        {"preset": "pargs", "scorer": "partial"},
        {"preset": "pargs", "scorer": "partial", "beta": 2.0, "samples": 10, "name": "pargs-b2"},
        {"preset": "args-sampled"},
        {"preset": "greedy"},
        {"name": "written-out", "kind": "guided", "k": 10, "beta": 1.5, "greedy": True, "scorer": "full"},
    ]
    local = tmp_path / "predict.yaml"
    local.write_text(yaml.safe_dump(config))
    methods = build(["predict", "-c", str(local), "--trainer.logger=false"]).model.methods
    fields = [(m.name, m.kind, m.k, m.beta, m.greedy, m.scorer, m.samples, m.top_k) for m in methods]
    assert fields == [
        ("pargs", "guided", 10, 1.5, False, "partial", 1, 0),
        ("pargs-b2", "guided", 10, 2.0, False, "partial", 10, 0),
        ("args-sampled", "guided", 10, 1.5, False, "full", 1, 0),
        ("greedy", "sample", 10, 1.5, True, None, 1, 0),
        ("written-out", "guided", 10, 1.5, True, "full", 1, 0),
    ]
