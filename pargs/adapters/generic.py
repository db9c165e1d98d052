"""Any local JSONL / JSON / Parquet / CSV / TSV (or hub) preference set -> records, by column mapping.

``columns`` maps each record field to the source column holding it, e.g.
``{"prompt": "question", "chosen": "good", "rejected": "bad", "id": "qid"}``; fields left out keep
their own name as column (``"prompt"``, ``"chosen"``, ``"rejected"``), and ``"id"`` is optional
(without it ids are ``"{name}-{split}-{row}"``). Dotted column names reach into nested objects
(``"info.question"``). Texts are copied exactly, without adding or removing whitespace. Columns
named in ``meta_fields`` are copied into each record's ``meta``.

Unusable rows (empty prompt, empty response, identical responses) are counted by reason.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from pargs.adapters.conversion import Converted, ConvertReport, convert_source
from pargs.adapters.fields import Location, get
from pargs.adapters.sources import LoadOptions
from pargs.errors import ConfigError

__all__ = ["DEFAULT_COLUMNS", "FIELDS", "NAME", "convert", "load_mapping", "make_row_converter", "resolve_columns"]

NAME = "generic"  # default dataset name: default ids and every record's source
DEFAULT_COLUMNS = {"prompt": "prompt", "chosen": "chosen", "rejected": "rejected"}  # field -> column
FIELDS = ("prompt", "chosen", "rejected", "id")  # record fields a mapping may name


MAPPING_KEYS = (*FIELDS, "name", "meta_fields")


def load_mapping(path: str | os.PathLike) -> dict:
    """A column mapping from a YAML (or JSON) file, e.g. ``{prompt: question, chosen: good, rejected: bad,
    id: qid, name: qa, meta_fields: [topic]}``: every key optional; a bad key or value names the file."""
    import yaml

    from pargs.records import RecordError

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise RecordError(path, None, None, f"cannot read the column mapping ({err})") from None
    if not isinstance(data, dict):
        raise RecordError(path, None, None, f"must be a mapping of {list(MAPPING_KEYS)}, got {type(data).__name__}")
    for key, value in data.items():
        if key not in MAPPING_KEYS:
            raise RecordError(path, None, str(key), f"is not a mapping key (known: {list(MAPPING_KEYS)})")
        ok = (
            (isinstance(value, list) and all(isinstance(v, str) for v in value))
            if key == "meta_fields"
            else (isinstance(value, str))
        )
        if not ok:
            raise RecordError(
                path,
                None,
                key,
                "must be a list of column names"
                if key == "meta_fields"
                else f"must be a column name (a string), got {value!r}",
            )
    return data


def resolve_columns(columns: Mapping[str, str] | None) -> dict[str, str]:
    """The full field -> column mapping: ``columns`` over :data:`DEFAULT_COLUMNS`, checked."""
    unknown = sorted(set(columns or {}) - set(FIELDS))
    if unknown:
        raise ConfigError(f"columns maps unknown record fields {unknown}: it may map only {list(FIELDS)}")
    mapping = {**DEFAULT_COLUMNS, **(columns or {})}
    bad = [f for f, c in mapping.items() if not isinstance(c, str) or not c]
    if bad:
        raise ConfigError(f"columns must map {bad} to non-empty column names")
    return mapping


def make_row_converter(mapping: Mapping[str, str], meta_fields: Sequence[str] = ()):
    """The row function for a resolved mapping (see :func:`resolve_columns`)."""

    def convert_row(row: dict, at: Location) -> Converted:
        """One row -> a pair, or the reason it is unusable."""
        pair = {f: get(row, mapping[f], str, at) for f in ("prompt", "chosen", "rejected")}
        rid = get(row, mapping["id"], (str, int), at) if "id" in mapping else None
        meta = {c: get(row, c, object, at, optional=True) for c in meta_fields}
        if meta:
            pair["meta"] = meta
        return Converted(pair, id=rid)

    return convert_row


def convert(
    source: str | os.PathLike,
    split: str,
    out_path: str | os.PathLike,
    *,
    columns: Mapping[str, str] | None = None,
    name: str = NAME,
    meta_fields: Sequence[str] = (),
    load: LoadOptions | None = None,
) -> ConvertReport:
    """Convert ``split`` of a preference set to preference JSONL at ``out_path``; return the report.

    Args:
        source: a local file / folder (JSONL, JSON, Parquet, CSV, TSV) or a hub dataset name.
        split: which split to read (for a single file, only used in ids).
        out_path: preference JSONL to write.
        columns: record field -> source column, for the fields whose column has another name.
        name: the dataset's name, used in default ids and as every record's ``source``.
        meta_fields: source columns copied into each record's ``meta``.
        load: reading options (``cache_dir``, ``data_dir``, ``config``, ``revision``, ``split_field``).
    """
    if not name or not isinstance(name, str):
        raise ConfigError("name must be a non-empty string: it starts every default id")
    mapping = resolve_columns(columns)
    return convert_source(
        name,
        source,
        split,
        out_path,
        make_row_converter(mapping, meta_fields),
        columns=[*mapping.values(), *meta_fields],
        load=load,
    )
