"""The command line every ``data/<name>/prepare.py`` shares: source and reading options, one-line errors."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable

from pargs.adapters.conversion import IN_SUMMARY, ConvertReport
from pargs.adapters.sources import LoadOptions
from pargs.errors import ConfigError

__all__ = ["load_options", "run_cli", "source_parser"]


def source_parser(
    description: str | None, *, default_source: str | None, default_split: str
) -> argparse.ArgumentParser:
    """A parser with the options every ``prepare.py`` shares: source, split, output and reading options."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--source",
        default=default_source,
        required=default_source is None,
        help="hub dataset name, or a local file/folder with a copy of the release"
        + (f" (default: {default_source})" if default_source else ""),
    )
    parser.add_argument("--split", default=default_split, help=f"split to convert (default: {default_split})")
    parser.add_argument("--out", required=True, help="preference JSONL to write")
    parser.add_argument("--config", help="hub dataset configuration (default: the adapter's)")
    parser.add_argument("--data-dir", help="sub-folder of the release to read (hub data_dir or local folder)")
    parser.add_argument("--revision", help="hub revision (tag, branch or commit) to pin")
    parser.add_argument("--cache-dir", help="datasets cache folder (default: datasets' own)")
    parser.add_argument("--split-field", help="local copies: read all files, keep rows whose column equals --split")
    return parser


def run_cli(main: Callable[[], ConvertReport]) -> ConvertReport:
    """Run a ``prepare.py`` main: log warnings to stderr (not those the printed summary repeats); a data or
    option error exits with its message."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(lambda record: not getattr(record, IN_SUMMARY, False))
    try:
        return main()
    except ConfigError as err:  # every adapter error is one (RecordError, SourceError, SourceUnavailableError too)
        raise SystemExit(f"error: {err}") from None


def load_options(args: argparse.Namespace) -> LoadOptions:
    """The :class:`LoadOptions` given on a command line parsed by a :func:`source_parser`."""
    return LoadOptions(
        config=args.config,
        data_dir=args.data_dir,
        revision=args.revision,
        cache_dir=args.cache_dir,
        split_field=args.split_field,
    )
