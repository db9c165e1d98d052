"""The study's step records (pargs/study/ledger.py), its choice on the validation prompts (pargs/study/tuning.py),
its per-seed aggregation and its progress display, on hand-made inputs."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest

from pargs.study.grids import beta_name
from pargs.study.ledger import Ledger, StudyConflict, differences, environment, fingerprint, git_commit, normalise
from pargs.study.plan import SMOKE
from pargs.study.progress import Progress
from pargs.study.tuning import mean_rewards, select


def test_differences_name_every_changed_field():
    old = {"trainer": {"max_epochs": 3, "callbacks": [{"dirpath": "a"}]}, "seed": 0, "gone": 1}
    new = {"trainer": {"max_epochs": 2, "callbacks": [{"dirpath": "b"}]}, "seed": 0, "added": [1, 2]}
    assert differences(old, new) == [
        "added: (absent) -> [1, 2]",
        "gone: 1 -> (absent)",
        'trainer.callbacks.0.dirpath: "a" -> "b"',
        "trainer.max_epochs: 3 -> 2",
    ]
    assert differences(old, old) == []
    assert differences({"m": [1, 2]}, {"m": [1, 2, 3]}) == ["m: [1, 2] -> [1, 2, 3]"]


def test_normalise_writes_the_seed_directory_as_a_placeholder(tmp_path):
    seed_dir = tmp_path / "seed-0"
    assert normalise({"a": [str(seed_dir / "models"), seed_dir], "b": 1.5}, seed_dir) == {
        "a": ["{seed_dir}/models", "{seed_dir}"],
        "b": 1.5,
    }


def test_status_done_run_and_refused_with_the_fields(tmp_path):
    ledger = Ledger(tmp_path / "seed-3", 3)
    config = {"trainer": {"max_epochs": 3}, "out": str(tmp_path / "seed-3" / "models")}
    assert ledger.status("sft", config, {"data": "abc"}) == "run"
    rec = ledger.write("sft", config, {"data": "abc"}, 12.345, load_before=1.0)
    assert rec["config"]["out"] == "{seed_dir}/models" and rec["seconds"] == 12.35
    assert rec["fingerprint"] == fingerprint(rec["config"], {"data": "abc"})
    assert ledger.status("sft", config, {"data": "abc"}) == "done"
    # the same study moved elsewhere still matches: paths are recorded relative to the seed directory
    moved = Ledger(tmp_path / "seed-3", 3)
    assert moved.status("sft", config, {"data": "abc"}) == "done"
    with pytest.raises(StudyConflict) as err:
        ledger.status("sft", {**config, "trainer": {"max_epochs": 2}}, {"data": "xyz"})
    text = str(err.value)
    assert "seed 3, step 'sft'" in text and "trainer.max_epochs: 3 -> 2" in text
    assert 'inputs.data: "abc" -> "xyz"' in text and "--redo sft" in text
    assert json.loads(ledger.path("sft").read_text())["config"]["trainer"]["max_epochs"] == 3  # untouched
    assert ledger.remove("sft") and ledger.status("sft", config, {}) == "run"


ENV = {"pargs": "0.1.0", "commit": "abc", "uncommitted_changes": False, "torch": "2.13.0", "transformers": "5.24.0",
       "device": "cpu", "threads": 2}  # fmt: skip


def test_a_step_recorded_in_another_environment_is_refused_unless_mixing_is_asked_for(tmp_path):
    ledger = Ledger(tmp_path / "seed-0", 0)
    config = {"trainer": {"max_epochs": 3}}
    rec = ledger.write("sft", config, {}, 1.0, env=ENV)
    assert rec["environment"] == ENV and ledger.status("sft", config, {}, env=ENV) == "done"
    other = {**ENV, "torch": "2.14.0", "threads": 16}
    with pytest.raises(StudyConflict) as err:
        ledger.status("sft", config, {}, env=other)
    text = str(err.value)
    assert "seed 0, step 'sft' was completed in another environment" in text
    assert "environment.threads: 2 -> 16" in text and 'environment.torch: "2.13.0" -> "2.14.0"' in text
    assert "--reuse" in text and "--redo sft" in text
    assert ledger.status("sft", config, {}, env=other, mix=True) == "done"  # --reuse keeps it
    # a record made before pargs recorded environments is another environment too
    old = json.loads(ledger.path("sft").read_text())
    del old["environment"]
    ledger.path("sft").write_text(json.dumps(old))
    with pytest.raises(StudyConflict, match="recorded before pargs recorded environments"):
        ledger.status("sft", config, {}, env=ENV)
    # a changed config is refused first, whatever the environment
    with pytest.raises(StudyConflict, match="another config"):
        ledger.status("sft", {"trainer": {"max_epochs": 2}}, {}, env=ENV, mix=True)


def test_environment_names_this_process(tmp_path):
    import subprocess

    import torch
    import transformers

    import pargs

    env = environment()
    assert (env["pargs"], env["torch"], env["transformers"]) == (
        pargs.__version__,
        torch.__version__,
        transformers.__version__,
    )
    assert env["threads"] == torch.get_num_threads() and env["device"] in ("cpu", "mps") or "cuda" in env["device"]
    root = Path(pargs.__file__).resolve().parent.parent
    if (root / ".git").exists():  # a checkout (a worktree's .git is a file): the commit git names
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True)
        assert env["commit"] == head.stdout.strip() and isinstance(env["uncommitted_changes"], bool)
        assert git_commit(root / "pargs") == (None, None)  # inside a checkout, but not its top: not pargs's own
    assert git_commit(tmp_path) == (None, None)  # no checkout at all


def _records(values: dict[str, dict[str, list[float]]]) -> list[dict]:
    return [
        {"id": pid, "method": m, "sample": i, "reward": r}
        for m, prompts in values.items()
        for pid, rs in prompts.items()
        for i, r in enumerate(rs)
    ]


def test_mean_rewards_average_samples_first_then_prompts():
    # prompt a: mean of 1 and 3 = 2; prompt b: 5 -> (2 + 5) / 2 = 3.5 (not the mean of all samples, 3)
    assert mean_rewards(_records({"m": {"a": [1.0, 3.0], "b": [5.0]}})) == {"m": 3.5}


def test_select_takes_the_best_grid_value_ties_to_the_first_and_compares_with_the_initial_policy():
    plan = SMOKE  # betas (1.0, 2.0), one DPO and one PPO grid point
    values = {
        "sft-top-k": {"a": [0.0], "b": [1.0]},
        "dpo-0": {"a": [0.2], "b": [0.6]},
        "ppo-0": {"a": [-1.0], "b": [0.0]},
    }
    for g, (low, high) in {
        "pargs": (0.0, 1.0),
        "pargs-g": (1.0, 1.0),
        "args": (2.0, -1.0),
        "args-sampled": (0.5, 0.5),
        "cd-fudge": (-3.0, -2.0),
    }.items():
        values[beta_name(g, 1.0)] = {"a": [low]}
        values[beta_name(g, 2.0)] = {"a": [high]}
    choice = select(_records(values), plan, "criterion")
    assert {g: c["chosen"] for g, c in choice["guided"].items()} == {
        "pargs": 2.0,
        "pargs-g": 1.0,
        "args": 1.0,
        "args-sampled": 1.0,
        "cd-fudge": 2.0,
    }
    assert choice["initial_policy"]["reward"] == 0.5
    assert choice["dpo"]["chosen_name"] == "dpo-0" and choice["dpo"]["reward"] == pytest.approx(0.4)
    assert choice["dpo"]["chosen"] == {"beta": 0.1, "lr": 5.0e-4} and choice["dpo"]["beats_initial_policy"] is False
    assert choice["ppo"]["chosen"] == {"kl_coef": 0.05} and choice["ppo"]["beats_initial_policy"] is False
    del values["ppo-0"]
    with pytest.raises(Exception, match="ppo-0"):
        select(_records(values), plan, "criterion")


def test_progress_plain_lines_when_not_a_terminal(caplog):
    progress = Progress(2, io.StringIO())
    with caplog.at_level(logging.INFO, logger="pargs.study.progress"):
        progress.start(1, "sft")
        progress.finish(1, "sft", "ran", 2.0)
        progress.finish(1, "tune", "done before", 3.0)
    assert [r.getMessage() for r in caplog.records] == [
        "study [1/2] seed 1: sft running",
        "study [1/2] seed 1: sft ran (2.0 s)",
        "study [2/2] seed 1: tune done before (3.0 s)",
    ]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal(caplog):
    stream = _Terminal()
    progress = Progress(2, stream)
    with caplog.at_level(logging.INFO, logger="pargs.study.progress"):
        progress.start(0, "dpo-1")
        progress.finish(0, "dpo-1", "ran", 1.0)
        progress.close()
    assert not caplog.records and "seed 0: dpo-1" in stream.getvalue() and "1/2" in stream.getvalue()
