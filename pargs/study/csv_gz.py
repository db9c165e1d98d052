"""Gzipped CSV files of typed rows, as a study writes its evidence (:mod:`pargs.study.evidence_files`) and each
seed's decision-level values (:mod:`pargs.study.decisions`).

A file is UTF-8 with a header; floats are written in full precision (``repr``), so they read back bit for bit;
an empty cell is None; booleans are ``1`` / ``0``; the gzip header holds no time stamp and no file name, so the
same rows give the same bytes. Columns are typed by a dict ``column -> type``: ``str``, ``int``, ``float``,
``"bool"``, or ``"float?"`` / ``"bool?"`` for a cell that may be empty.
"""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

from pargs.atomic_files import replace_file
from pargs.errors import ConfigError


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    return repr(float(value)) if isinstance(value, float) else str(value)  # float(): numpy's repr names its type


def write_csv_gz(path: Path, columns: list[str], rows: list[dict]) -> None:
    """``rows`` under ``columns`` as a gzipped CSV, atomically and byte-reproducibly (no time stamp, no name)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([_cell(r[c]) for c in columns] for r in rows)
    packed = io.BytesIO()
    with gzip.GzipFile(filename="", fileobj=packed, mode="wb", mtime=0) as gz:
        gz.write(buf.getvalue().encode("utf-8"))
    replace_file(Path(path), [packed.getvalue()])


def _typed(value: str, kind, where: str):
    if kind in ("float?", "bool?") and value == "":
        return None
    try:
        if kind in ("bool", "bool?"):
            return {"1": True, "0": False}[value]
        if kind == "float?":
            return float(value)
        return kind(value)
    except (KeyError, ValueError):
        raise ConfigError(f"{where}: {value!r} is not a {getattr(kind, '__name__', kind)}") from None


def read_csv_gz(path: Path, columns: dict[str, object]) -> list[dict]:
    """The rows of a file written by :func:`write_csv_gz`, typed by ``columns`` (other columns are left out); a
    missing column is an error naming the file."""
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise ConfigError(f"{path}: columns {missing} are missing; it is not a pargs study evidence file")
        return [
            {c: _typed(r[c], kind, f"{path}, line {i + 2}, column {c}") for c, kind in columns.items()}
            for i, r in enumerate(reader)
        ]
