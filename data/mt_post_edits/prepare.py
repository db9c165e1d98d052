"""Convert a machine-translation post-edit set (src, mt, pe) into preference JSONL.

See pargs.adapters.mt_post_edits. Run from the repository root (with pargs installed, or PYTHONPATH=.):

    python data/mt_post_edits/prepare.py --source iwslt17_pe/train.csv --split train \\
        --out data/mt_post_edits/train.jsonl
    python data/mt_post_edits/prepare.py --source data/mt_post_edits/sample/test.csv --split test \\
        --out /tmp/mt.jsonl --prompts-out /tmp/mt_prompts.jsonl

In --template, the two characters \\n stand for a newline.
"""

from __future__ import annotations

from pargs.adapters import mt_post_edits
from pargs.adapters.conversion import ConvertReport
from pargs.adapters.prepare_script import load_options, run_cli, source_parser


def main(argv: list[str] | None = None) -> ConvertReport:
    """Parse the command line and convert; return the report."""
    parser = source_parser(__doc__, default_source=None, default_split="train")
    parser.add_argument(
        "--template", default=mt_post_edits.DEFAULT_TEMPLATE, help="prompt; {src} is the source sentence"
    )
    parser.add_argument("--src-field", default="src", help="column of the source sentence (default: src)")
    parser.add_argument("--mt-field", default="mt", help="column of the machine translation (default: mt)")
    parser.add_argument("--pe-field", default="pe", help="column of the human post-edit (default: pe)")
    parser.add_argument("--id-field", help="column of a row id (default: ids from the row number)")
    parser.add_argument("--prompts-out", help="also write unique prompts with the post-edit as reference here")
    args = parser.parse_args(argv)
    return mt_post_edits.convert(
        args.source,
        args.split,
        args.out,
        template=args.template.replace("\\n", "\n"),
        src_field=args.src_field,
        mt_field=args.mt_field,
        pe_field=args.pe_field,
        id_field=args.id_field,
        prompts_out=args.prompts_out,
        load=load_options(args),
    )


if __name__ == "__main__":
    print(run_cli(main).summary())
