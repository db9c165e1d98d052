"""What a command prints: each line once, Lightning without its tips, no load report that reads like an error
for a reward head that is new by design, and predict's closing line (issue 20's "progress a person can find")."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.subprocesses import ROOT, run_pargs
from tests.test_run_outputs import _fit_config


def test_lightning_lines_print_once_and_its_tips_not_at_all():
    """rouge_score logs through absl, whose first message calls logging.basicConfig(): with no root handler that
    installed one at INFO, and every Lightning INFO line printed a second time as ``INFO:lightning...``."""
    script = textwrap.dedent(
        """
        from pargs.cli import setup_logging
        setup_logging()
        import pargs.metrics.diversity  # builds a RougeScorer, which logs through absl
        from lightning.fabric.utilities.seed import seed_everything
        from lightning.pytorch.utilities.rank_zero import rank_zero_info, rank_zero_warn
        seed_everything(0)
        rank_zero_info("💡 Tip: For seamless cloud logging, try installing something")
        rank_zero_info("kept")
        import logging
        logging.getLogger("some.library").warning("a library's warning")
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env={"PYTHONPATH": str(ROOT)}, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stderr.splitlines()
    assert lines.count("INFO: Seed set to 0") == 1 and lines.count("INFO: kept") == 1, lines
    assert not [x for x in lines if "Tip" in x or x.startswith("INFO:lightning")], lines
    assert lines.count("a library's warning") == 1, lines  # other libraries' warnings still show, once


def test_a_reward_model_from_a_language_model_says_its_head_is_new_in_one_line(tmp_path, synthetic_dir, model_dirs):
    proc = run_pargs("fit", "-c", str(_fit_config(tmp_path, synthetic_dir, model_dirs)))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "LOAD REPORT" not in proc.stderr and "MISSING" not in proc.stderr and "not sharded" not in proc.stderr
    head = [x for x in proc.stderr.splitlines() if "reward head" in x]
    assert head == [
        f"[pargs] {model_dirs['reference']} is a language model: the reward head (score.weight) starts untrained, "
        "as expected"
    ]
