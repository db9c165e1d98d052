"""``pargs prepare-synthetic --out DIR``: the synthetic task's files (:mod:`pargs.tasks.synthetic_prepare`)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, write the files, print their paths as JSON."""
    parser = argparse.ArgumentParser(prog="pargs prepare-synthetic", description="Write the synthetic task's files.")
    parser.add_argument("--out", required=True, help="output directory")
    # options left out keep SyntheticSizes' defaults (SUPPRESS: absent from the namespace)
    parser.add_argument("--seed", type=int, default=argparse.SUPPRESS)
    for name in ("n_sft", "n_pairs", "n_pairs_val", "n_test"):
        parser.add_argument("--" + name.replace("_", "-"), dest=name, type=int, default=argparse.SUPPRESS)
    ns = parser.parse_args(argv)

    from pargs.tasks.synthetic_prepare import SyntheticSizes, prepare_synthetic

    out = vars(ns).pop("out")
    summary = prepare_synthetic(out, SyntheticSizes(**vars(ns)))
    print(json.dumps(summary["files"], indent=2))
    return 0
