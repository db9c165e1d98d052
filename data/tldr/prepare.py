"""Convert the OpenAI TL;DR comparisons into preference JSONL (see pargs.adapters.tldr).

Run from the repository root (with pargs installed, or PYTHONPATH=.):

    python data/tldr/prepare.py --split train --out data/tldr/train.jsonl
    python data/tldr/prepare.py --split validation --out data/tldr/valid.jsonl \\
        --prompts-out data/tldr/test_prompts.jsonl
    # the original release (comparisons/batch*.json) names each row's split in a field:
    python data/tldr/prepare.py --source data/tldr/sample --split-field split --split train \\
        --out /tmp/tldr.jsonl
    # one file of it needs no --split-field: rows of other splits are skipped (and counted) all the same
    python data/tldr/prepare.py --source data/tldr/sample/comparisons/batch3.json --split train \\
        --out /tmp/tldr.jsonl

In --template and --article-template, the two characters \\n stand for a newline.
"""

from __future__ import annotations

from pargs.adapters import tldr
from pargs.adapters.conversion import ConvertReport
from pargs.adapters.prepare_script import load_options, run_cli, source_parser


def main(argv: list[str] | None = None) -> ConvertReport:
    """Parse the command line and convert; return the report."""
    parser = source_parser(__doc__, default_source=tldr.HUB_NAME, default_split="train")
    parser.add_argument(
        "--template",
        default=tldr.DEFAULT_TEMPLATE,
        help="prompt of a Reddit post; fields {subreddit}, {title}, {post}",
    )
    parser.add_argument(
        "--article-template",
        help="prompt of a CNN/DM row ({article}, {title}, {site}); unset: count such rows unusable",
    )
    parser.add_argument("--prompts-out", help="also write unique prompts with a chosen summary as reference here")
    args = parser.parse_args(argv)
    return tldr.convert(
        args.source,
        args.split,
        args.out,
        template=args.template.replace("\\n", "\n"),
        article_template=args.article_template and args.article_template.replace("\\n", "\n"),
        prompts_out=args.prompts_out,
        load=load_options(args),
    )


if __name__ == "__main__":
    print(run_cli(main).summary())
