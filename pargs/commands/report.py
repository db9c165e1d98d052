"""``pargs report RUN_DIR [RUN_DIR ...]``: the results tables and figures of :mod:`pargs.report`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, build the report, print its table and where it was written."""
    parser = argparse.ArgumentParser(prog="pargs report", description="Results tables and figures from predictions.")
    parser.add_argument("inputs", nargs="+", help="run directories (their predictions/ folder) or prediction files")
    parser.add_argument("--out", help="output directory (default: <first run>/report)")
    parser.add_argument("--baseline", default="pargs", help="method the Wilcoxon tests compare against")
    parser.add_argument(
        "--reward-name",
        help="what the reward is, for the table's note and the figures, for lines that do not name it (written by "
        "an older pargs); pargs predict names it in every line (reward_name), and a name that contradicts the "
        "lines' is an error",
    )
    parser.add_argument(
        "--tensorboard", help="also write TensorBoard summaries here (default: <first run>/tensorboard/report)"
    )
    ns = parser.parse_args(argv)

    from pargs.report import build_report, default_report_dir, format_markdown, run_inputs

    out = Path(ns.out) if ns.out else default_report_dir(ns.inputs[0])
    tensorboard = Path(ns.tensorboard) if ns.tensorboard else out.parent / "tensorboard" / "report"
    result = build_report(
        run_inputs(ns.inputs), out, baseline=ns.baseline, tensorboard_dir=tensorboard, reward_name=ns.reward_name
    )
    print(format_markdown(result))
    print(f"\nwritten to {out} (TensorBoard: {tensorboard})")
    return 0
