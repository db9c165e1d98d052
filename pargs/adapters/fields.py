"""Reading the fields of a source row, and saying where a bad one is.

An adapter's row function receives each row with its :class:`Location` and reads every field through
:func:`get` / :func:`get_list`. A field that is missing, null or of the wrong type raises a
:class:`SourceError` (a :class:`pargs.records.RecordError`, so a :class:`pargs.errors.ConfigError`)
naming the file, the row and the field: ``file.jsonl, line 7: field 'choice' must be an integer, got str``
for JSONL files (lines count from 1, blank lines included), ``file.parquet, row 6: ...`` for the other
formats and for hub datasets (rows count from 0, as in ``dataset[6]``).
"""

from __future__ import annotations

import gzip
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pargs.errors import ConfigError
from pargs.records import RecordError

__all__ = ["Location", "SourceError", "as_continuation", "get", "get_list", "template_fields"]


@dataclass(frozen=True)
class Location:
    """Where a source row came from, for error messages."""

    file: str  #: the file, or ``"owner/name [split]"`` for a hub dataset
    row: int  #: 0-based position of the row in that file
    line: int | None = None  #: 1-based line number when known
    jsonl: bool = False  #: rows are the non-blank lines of the file, so the line can be recovered

    def resolved_line(self) -> int | None:
        """The 1-based line of the row: known, recovered from a JSONL file, or None."""
        if self.line is None and self.jsonl:
            return _line_of_row(Path(self.file), self.row)
        return self.line

    def __str__(self) -> str:
        line = self.resolved_line()
        return f"{self.file}, line {line}" if line is not None else f"{self.file}, row {self.row}"


class SourceError(RecordError):
    """A malformed row of a source release, located by file, row (or line) and field."""

    def __init__(self, at: Location, field: str | None, message: str):
        super().__init__(at.file, at.resolved_line(), field, message)
        self.row = at.row
        what = f" field '{field}'" if field else ""
        self.args = (f"{at}:{what} {message}",)


def _line_of_row(path: Path, row: int) -> int | None:
    """The 1-based line holding the ``row``-th non-blank line of a JSONL file (None for a JSON array)."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            seen = -1
            for line_no, raw in enumerate(fh, start=1):
                if line_no == 1 and raw.lstrip().startswith(b"["):
                    return None
                if raw.strip():
                    seen += 1
                    if seen == row:
                        return line_no
    except OSError:
        return None
    return None


def _type_name(types: tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", list: "a list", dict: "an object"}
    return " or ".join(names.get(t, t.__name__) for t in types)


def get(
    obj: Mapping,
    name: str,
    types: type | tuple[type, ...],
    at: Location,
    *,
    parent: str = "",
    optional: bool = False,
) -> Any:
    """Return ``obj[name]`` after checking its type, or raise a :class:`SourceError` naming the field.

    Args:
        obj: a row, or an object inside one.
        name: the key; a dotted name (``"info.post"``) reaches into nested objects unless ``obj``
            has that exact key.
        types: the accepted Python type(s); a ``bool`` never passes where an ``int`` or ``float`` is asked.
        at: where the row came from.
        parent: how the error names ``obj`` (``"summaries[1]"``), so the field reads ``"summaries[1].text"``.
        optional: return None for a missing or null value instead of failing.
    """
    types = types if isinstance(types, tuple) else (types,)
    if name not in obj and "." in name:
        head, rest = name.split(".", 1)
        inner = get(obj, head, dict, at, parent=parent, optional=optional)
        if inner is None:
            return None
        return get(inner, rest, types, at, parent=_join(parent, head), optional=optional)
    value = obj.get(name)
    if value is None:
        if optional:
            return None
        raise SourceError(at, _join(parent, name), "is missing or null")
    if not isinstance(value, types) or (isinstance(value, bool) and (int in types or float in types)):
        raise SourceError(at, _join(parent, name), f"must be {_type_name(types)}, got {type(value).__name__}")
    return value


def get_list(obj: Mapping, name: str, item_types: type | tuple[type, ...], at: Location, *, parent: str = "") -> list:
    """Return the list ``obj[name]`` after checking that every item has one of ``item_types``."""
    values = get(obj, name, list, at, parent=parent)
    item_types = item_types if isinstance(item_types, tuple) else (item_types,)
    for k, value in enumerate(values):
        if not isinstance(value, item_types) or isinstance(value, bool):
            raise SourceError(
                at,
                f"{_join(parent, name)}[{k}]",
                f"must be {_type_name(item_types)}, got {type(value).__name__}",
            )
    return values


def _join(parent: str, name: str) -> str:
    return f"{parent}.{name}" if parent else name


def as_continuation(text: str) -> str:
    """``text`` continuing a prompt that ends in ``:``: surrounding whitespace becomes one leading space."""
    return " " + text.strip()


def template_fields(template: str, allowed: Sequence[str], option: str) -> list[str]:
    """The ``{name}`` fields ``template`` uses; fail with a clear message if any is not in ``allowed``."""
    used = []
    for _, name, spec, conversion in string.Formatter().parse(template):
        if name is None:
            continue
        if name not in allowed or spec or conversion:
            shown = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            raise ConfigError(
                f"{option} {template!r} uses {shown}; it may only use plain fields among "
                + ", ".join("{" + a + "}" for a in allowed)
                + " (write {{ and }} for literal braces)"
            )
        used.append(name)
    return used
