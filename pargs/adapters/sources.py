"""Opening a source: a local copy of a release (JSONL / JSON / Parquet / CSV / TSV) or a Hugging Face Hub dataset.

``source`` is either a local copy of the release (a file, optionally ``.gz``-compressed for the text
formats, or a folder of them) read with ``datasets.load_dataset("json" | "parquet" | "csv",
data_files=...)``, or a hub dataset name read with ``datasets.load_dataset(name, config, split=split)``.
In a folder, the files of a split are those named ``{split}.jsonl``, ``{split}-00000-of-00001.parquet``
(any ``{split}-*``) or lying in a folder named ``{split}``; with ``LoadOptions.split_field`` every file
is read and rows are selected by that column instead. CSV/TSV cells are read as text. Every failure is
a :class:`pargs.errors.ConfigError`: a :class:`pargs.records.RecordError` naming the file, or a
:class:`pargs.errors.SourceUnavailableError` when the hub cannot give the dataset.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import gzip
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from pargs.adapters.fields import Location, SourceError
from pargs.errors import ConfigError, SourceUnavailableError
from pargs.records import RecordError, iter_jsonl

log = logging.getLogger(__name__)

__all__ = ["LoadOptions", "Part", "check_columns", "column_names", "open_parts"]

# Local file formats: suffix -> (datasets builder, extra builder arguments).
_FORMATS: dict[str, tuple[str, dict[str, Any]]] = {
    ".jsonl": ("json", {}),
    ".json": ("json", {}),
    ".parquet": ("parquet", {}),
    ".csv": ("csv", {}),
    ".tsv": ("csv", {"sep": "\t"}),
}


@dataclass
class LoadOptions:
    """Where and how to read a source; every field may stay unset."""

    config: str | None = None  #: hub dataset configuration (e.g. "comparisons"); None: the adapter's default
    data_dir: str | None = None  #: sub-folder to read: hub ``data_dir``, or a folder inside a local copy
    revision: str | None = None  #: hub revision (tag, branch or commit) to pin; hub sources only
    cache_dir: str | None = None  #: where ``datasets`` keeps its Arrow cache; None: its default
    split_field: str | None = None  #: local copies: read every file, keep rows whose column equals the split


class Part(NamedTuple):
    """The rows of one file (or one hub split)."""

    name: str  #: how errors name it
    rows: Any  #: a ``datasets.Dataset`` or a list of dicts
    lines: list[int] | None  #: the line of each row, when read line by line
    jsonl: bool  #: rows are the non-blank lines of the file


def _format(path: Path) -> tuple[str, dict[str, Any], str] | None:
    """``(builder, builder arguments, stem)`` for a supported local file, else None."""
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
        if name.endswith(".parquet"):
            return None
    suffix = os.path.splitext(name)[1]
    if suffix not in _FORMATS:
        return None
    builder, kwargs = _FORMATS[suffix]
    return builder, kwargs, path.name[: len(name) - len(suffix)]


def _is_hub_name(source: str) -> bool:
    """Whether a source that is not a local path looks like a hub dataset name (``owner/name``)."""
    return (
        source.count("/") <= 1
        and not source.startswith((".", "/", "~"))
        and "\\" not in source
        and _format(Path(source)) is None
    )


def _split_files(root: Path, split: str, by_field: bool) -> list[Path]:
    """The supported files of a local folder that hold ``split`` (all of them when ``by_field``)."""
    files = sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and _format(p) is not None
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    if not files:
        raise RecordError(root, None, None, f"holds no {'/'.join(_FORMATS)} files (optionally .gz)")
    if by_field:
        return files

    def holds_split(p: Path) -> bool:
        stem = _format(p)[2]
        return stem == split or stem.startswith(split + "-") or split in p.relative_to(root).parts[:-1]

    chosen = [p for p in files if holds_split(p)]
    if not chosen:
        shown = ", ".join(str(p.relative_to(root)) for p in files[:10]) + (" ..." if len(files) > 10 else "")
        raise RecordError(
            root,
            None,
            None,
            f"has no file for split {split!r} (looked for {split}.jsonl, {split}-*.parquet and the like, or "
            f"files in a folder named {split}); it holds: {shown}. Pass another split, the file itself, "
            "or a split_field if the rows name their split",
        )
    return chosen


def _load_local_file(path: Path, cache_dir: str | None) -> Part:
    """Read one local file with ``datasets``; fall back to the json module to locate a mixed-type row."""
    import datasets

    if path.stat().st_size == 0:
        raise RecordError(path, None, None, "is empty: it holds no rows to convert")
    builder, kwargs, _ = _format(path)
    kwargs = dict(kwargs)
    if builder == "csv":
        # every cell as text, empty cells as "" (not null)
        kwargs.update(features=_csv_text_features(path, kwargs.get("sep", ",")), keep_default_na=False, na_filter=False)
    try:
        with _no_download_count():
            ds = datasets.load_dataset(builder, data_files=[str(path)], split="train", cache_dir=cache_dir, **kwargs)
    except Exception as err:  # datasets wraps pyarrow/pandas errors in several types
        cause = err.__cause__ or err
        if builder != "json" or path.name.lower().endswith(".gz"):
            raise RecordError(path, None, None, f"could not be read as {builder}: {cause}") from err
        log.warning("%s: datasets could not read it (%s); reading it with the json module instead", path, cause)
        return _read_json_python(path)
    if builder == "json" and _has_json_feature(ds.features):
        # datasets stores a column of mixed types re-encoded; read exact values to check each row's type
        log.info("%s: a column holds values of several types; reading it with the json module", path)
        return _read_json_python(path)
    is_jsonl = builder == "json" and not _starts_with_bracket(path)
    return Part(str(path), ds, None, is_jsonl)


@contextlib.contextmanager
def _no_download_count() -> Iterator[None]:
    """Keep ``datasets`` off the network while it reads a local file.

    ``load_dataset("json", ...)`` otherwise sends a request to the hub's download counter for the
    packaged builder (and waits for its timeout where there is no network).
    """
    from datasets import config

    saved = config.HF_UPDATE_DOWNLOAD_COUNTS
    config.HF_UPDATE_DOWNLOAD_COUNTS = False
    try:
        yield
    finally:
        config.HF_UPDATE_DOWNLOAD_COUNTS = saved


def _has_json_feature(feature: Any) -> bool:
    """Whether a ``datasets`` feature (or a nested one) is ``Json``, the type of mixed-type columns."""
    from datasets import Json

    if isinstance(feature, Json):
        return True
    if isinstance(feature, dict):
        return any(_has_json_feature(f) for f in feature.values())
    inner = getattr(feature, "feature", None)
    return inner is not None and _has_json_feature(inner)


def _starts_with_bracket(path: Path) -> bool:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as fh:
        return fh.read(4096).removeprefix(codecs.BOM_UTF8).lstrip().startswith(b"[")


def _read_json_python(path: Path) -> Part:
    """Read a JSON array or JSONL file with the json module, keeping exact types and line numbers."""
    if _starts_with_bracket(path):
        import json

        try:
            rows = json.loads(path.read_text(encoding="utf-8-sig"))
        except (ValueError, UnicodeDecodeError) as err:
            raise RecordError(path, None, None, f"is not valid JSON ({err})") from None
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise SourceError(Location(str(path), i), None, f"must be a JSON object, got {type(row).__name__}")
        return Part(str(path), rows, None, False)
    pairs = list(iter_jsonl(path))
    return Part(str(path), [obj for _, obj in pairs], [line for line, _ in pairs], True)


def _csv_text_features(path: Path, sep: str):
    """``datasets.Features`` reading every column of a CSV/TSV file as a string."""
    from datasets import Features, Value

    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8-sig", newline="") as fh:
            header = next(csv.reader(fh, delimiter=sep), None)
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise RecordError(path, 1, None, f"cannot read its header line as UTF-8 text ({err})") from None
    if header is None:
        raise RecordError(path, None, None, "is empty: it holds no header line and no rows to convert")
    if not header:
        raise RecordError(path, 1, None, "has no header line naming its columns")
    return Features({name: Value("string") for name in header})


def _load_hub(name: str, split: str, load: LoadOptions, default_config: str | None) -> Part:
    """Read one split of a hub dataset with ``datasets.load_dataset``."""
    import datasets

    config = load.config or default_config
    try:
        ds = datasets.load_dataset(
            name,
            config,
            split=split,
            data_dir=load.data_dir,
            revision=load.revision,
            cache_dir=load.cache_dir,
        )
    except Exception as err:  # network, auth, unknown name/split/config: all end here
        raise SourceUnavailableError(
            f"could not load {name!r} (config {config!r}, split {split!r}) from the Hugging Face Hub: {err}. "
            "Check the name, split and config, or download the release and pass its local path as the source."
        ) from err
    return Part(f"{name} [{split}]", ds, None, False)


def open_parts(source: str | os.PathLike, split: str, load: LoadOptions, default_config: str | None) -> list[Part]:
    """Every part (file or hub split) that holds the rows of ``split``."""
    path = Path(source).expanduser()
    if not path.exists():
        if not _is_hub_name(str(source)):
            raise RecordError(path, None, None, "not found: pass an existing file or folder, or a hub dataset name")
        if load.split_field:
            raise ConfigError("split_field selects rows of a local copy; for a hub dataset pass the split itself")
        return [_load_hub(str(source), split, load, default_config)]
    if load.config or load.revision:
        raise ConfigError(f"config and revision apply to hub datasets, but {source} is a local path: drop them")
    if load.data_dir:
        path = path / load.data_dir
        if not path.is_dir():
            raise RecordError(path, None, None, "not found: data_dir must name a folder inside the source folder")
    if path.is_file():
        if _format(path) is None:
            raise RecordError(
                path, None, None, f"has an unsupported format: use one of {', '.join(_FORMATS)} (.gz allowed)"
            )
        files = [path]
    else:
        files = _split_files(path, split, load.split_field is not None)
    return [_load_local_file(f, load.cache_dir) for f in files]


def column_names(part: Part) -> list[str]:
    """The columns of a part (rows read with the json module: the keys of any row)."""
    names = getattr(part.rows, "column_names", None)
    return list(names) if names is not None else list(dict.fromkeys(key for row in part.rows for key in row))


def check_columns(parts: list[Part], columns: Sequence[str]) -> None:
    """Fail early, naming the file, when a column the adapter needs is absent from a whole file."""
    for part in parts:
        names = column_names(part)
        if not names and not len(part.rows):
            raise RecordError(part.name, None, None, "is empty: it holds no rows to convert")
        for col in columns:
            if col not in names and col.split(".")[0] not in names:
                raise RecordError(
                    part.name,
                    None,
                    col,
                    f"is not a column of this source (it has {', '.join(names)}): "
                    "fix the source, or tell the adapter which column to use",
                )
