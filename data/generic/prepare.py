"""Convert any local JSONL / JSON / Parquet / CSV preference set into preference JSONL.

See pargs.adapters.generic. Run from the repository root (with pargs installed, or PYTHONPATH=.):

    python data/generic/prepare.py --source pairs.csv --split train --out data/generic/train.jsonl
    python data/generic/prepare.py --source data/generic/sample/train.jsonl --name qa \\
        --prompt question --chosen good --rejected bad --id qid --meta-field topic --out /tmp/qa.jsonl
    python data/generic/prepare.py --source data/generic/sample/train.jsonl \\
        --mapping data/generic/sample/mapping.yaml --out /tmp/qa.jsonl    # the same, from a file

Options given on the command line win over the mapping file's.
"""

from __future__ import annotations

from pargs.adapters import generic
from pargs.adapters.conversion import ConvertReport
from pargs.adapters.prepare_script import load_options, run_cli, source_parser


def main(argv: list[str] | None = None) -> ConvertReport:
    """Parse the command line and convert; return the report."""
    parser = source_parser(__doc__, default_source=None, default_split="train")
    for name in generic.FIELDS:
        parser.add_argument(
            f"--{name}",
            help=f"source column holding the record's {name}"
            + (" (default: none)" if name == "id" else f" (default: {name})"),
        )
    parser.add_argument("--name", help=f"dataset name for ids and the source field (default: {generic.NAME})")
    parser.add_argument(
        "--mapping", help="YAML file with the column mapping (keys: prompt, chosen, rejected, id, name, meta_fields)"
    )
    parser.add_argument("--meta-field", action="append", default=[], help="column to copy into meta (repeatable)")
    args = parser.parse_args(argv)
    mapping = generic.load_mapping(args.mapping) if args.mapping else {}
    columns = {name: mapping[name] for name in generic.FIELDS if name in mapping}
    columns.update({name: getattr(args, name) for name in generic.FIELDS if getattr(args, name)})
    return generic.convert(
        args.source,
        args.split,
        args.out,
        columns=columns,
        name=args.name or mapping.get("name", generic.NAME),
        meta_fields=args.meta_field or mapping.get("meta_fields", []),
        load=load_options(args),
    )


if __name__ == "__main__":
    print(run_cli(main).summary())
