"""Convert UltraFeedback binarized into preference JSONL (see pargs.adapters.ultrafeedback).

Run from the repository root (with pargs installed, or PYTHONPATH=.):

    python data/ultrafeedback/prepare.py --split train_prefs --out data/ultrafeedback/train.jsonl
    python data/ultrafeedback/prepare.py --split test_prefs --tokenizer path/to/instruct-model \\
        --out data/ultrafeedback/test.jsonl
    python data/ultrafeedback/prepare.py --source data/ultrafeedback/sample --split test_prefs \\
        --out /tmp/uf.jsonl
"""

from __future__ import annotations

from pargs.adapters import ultrafeedback
from pargs.adapters.conversion import ConvertReport
from pargs.adapters.prepare_script import load_options, run_cli, source_parser


def main(argv: list[str] | None = None) -> ConvertReport:
    """Parse the command line and convert; return the report."""
    parser = source_parser(__doc__, default_source=ultrafeedback.HUB_NAME, default_split="train_prefs")
    parser.add_argument("--keep-ties", action="store_true", help="write pairs with equal scores (default: count them)")
    parser.add_argument("--tokenizer", help="render prompts with this tokenizer's chat template (default: plain text)")
    args = parser.parse_args(argv)
    return ultrafeedback.convert(
        args.source,
        args.split,
        args.out,
        keep_ties=args.keep_ties,
        tokenizer=args.tokenizer,
        load=load_options(args),
    )


if __name__ == "__main__":
    print(run_cli(main).summary())
