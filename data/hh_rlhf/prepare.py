"""Convert Anthropic HH-RLHF into the project's preference JSONL (see pargs.adapters.hh_rlhf).

Run from the repository root (with pargs installed, or PYTHONPATH=.):

    python data/hh_rlhf/prepare.py --split train --out data/hh_rlhf/train.jsonl
    python data/hh_rlhf/prepare.py --data-dir helpful-base --split test --out data/hh_rlhf/helpful_test.jsonl
    python data/hh_rlhf/prepare.py --source data/hh_rlhf/sample --split train --out /tmp/hh_sample.jsonl
"""

from __future__ import annotations

from pargs.adapters import hh_rlhf
from pargs.adapters.conversion import ConvertReport
from pargs.adapters.prepare_script import load_options, run_cli, source_parser


def main(argv: list[str] | None = None) -> ConvertReport:
    """Parse the command line and convert; return the report."""
    parser = source_parser(__doc__, default_source=hh_rlhf.HUB_NAME, default_split="train")
    args = parser.parse_args(argv)
    return hh_rlhf.convert(args.source, args.split, args.out, load=load_options(args))


if __name__ == "__main__":
    print(run_cli(main).summary())
