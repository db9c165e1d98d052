"""What every dataset adapter shares: reading a release, locating bad rows, counting, writing.

An adapter turns one row of a public release into a :class:`Converted` (a preference pair, or the
reason the row is unusable, plus an optional evaluation prompt); :func:`convert_source` does the
rest:

- **Reading.** ``source`` is either a local copy of the release (a JSONL / JSON / Parquet / CSV / TSV
  file, optionally ``.gz``-compressed for the text formats, or a folder of them) read with
  ``datasets.load_dataset("json" | "parquet" | "csv", data_files=...)``, or a Hugging Face Hub
  dataset name read with ``datasets.load_dataset(name, config, split=split)``. In a folder, the
  files of a split are those named ``{split}.jsonl``, ``{split}-00000-of-00001.parquet`` (any
  ``{split}-*``) or lying in a folder named ``{split}``; with ``LoadOptions.split_field`` every file
  is read and rows are selected by that column instead. CSV/TSV cells are read as text.
- **Locating.** Malformed input (a field missing, null or of the wrong type) raises a
  :class:`SourceError` (a :class:`pargs.records.RecordError`) naming the file, the row and the
  field: ``file.jsonl, line 7: field 'choice' must be an integer, got str`` for JSONL files (lines
  count from 1, blank lines included), ``file.parquet, row 6: ...`` for the other formats and for
  hub datasets (rows count from 0, as in ``dataset[6]``).
- **Counting.** Well-formed rows that cannot be trained on are counted per reason in the
  :class:`ConvertReport`, with the first few ids of each, never silently dropped:
  ``read == written + sum(unusable.values())``. The checks shared by all adapters match
  :func:`pargs.records.load_preferences`, so every written record loads without ``drop_unusable``.
- **Writing.** Records stream into :func:`pargs.records.write_jsonl` (temporary file, then rename):
  an error part-way leaves any existing output untouched. Ids are the source's own id when it has
  one (a repeated id gets a ``#2``, ``#3`` ... suffix, counted in ``notes``), else
  ``"{dataset}-{split}-{row_index}"`` (``"{dataset}-{data_dir}-{split}-{row_index}"`` when a
  ``data_dir`` is read); every record's ``source`` names the dataset.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import gzip
import logging
import os
import string
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, NamedTuple

from pargs.records import RecordError, iter_jsonl, write_jsonl

log = logging.getLogger(__name__)

__all__ = [
    "EMPTY_PROMPT",
    "EMPTY_RESPONSE",
    "IDENTICAL",
    "ConvertReport",
    "Converted",
    "LoadOptions",
    "Location",
    "SourceError",
    "as_continuation",
    "convert_source",
    "get",
    "get_list",
    "load_options",
    "run_cli",
    "source_parser",
    "template_fields",
]

# Reasons shared by all adapters (adapter modules define their own as well).
EMPTY_PROMPT = "empty prompt"
EMPTY_RESPONSE = "empty response"
IDENTICAL = "identical responses"

# How many ids of each unusable reason the report keeps as examples.
_EXAMPLES_PER_REASON = 3

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


class Converted(NamedTuple):
    """What an adapter makes of one source row."""

    pair: dict | str  #: {"prompt", "chosen", "rejected"} (+ "meta"), or the reason the row is unusable
    prompt: dict | None = None  #: evaluation prompt {"prompt", "reference"} (+ "id"), or None if it has none
    id: str | int | None = None  #: the source's own id for the row, when it has one
    note: str | None = None  #: something worth counting about a written pair (e.g. "tie kept")


@dataclass
class ConvertReport:
    """What a conversion read, wrote, and could not use (by reason)."""

    dataset: str  #: adapter name, also the ``source`` field of every record
    source: str  #: hub name or local path that was read
    split: str  #: the split that was read
    out_path: str  #: the preference JSONL written
    files: list[str] = field(default_factory=list)  #: files (or hub split) the rows came from
    read: int = 0  #: rows of the split read from the source
    written: int = 0  #: preference records written
    unusable: Counter = field(default_factory=Counter)  #: reason -> rows that gave no preference record
    examples: dict[str, list[str]] = field(default_factory=dict)  #: reason -> first ids of such rows
    notes: Counter = field(default_factory=Counter)  #: remark -> written records it applies to
    other_split: int = 0  #: rows skipped because their split_field named another split
    prompts_path: str | None = None  #: the prompt JSONL written, if asked for
    prompts_written: int = 0  #: unique prompt records written
    prompts_duplicate: int = 0  #: rows whose prompt text was already written
    prompts_skipped: Counter = field(default_factory=Counter)  #: reason -> rows that gave no prompt record

    def count_unusable(self, reason: str, rid: str) -> None:
        """Count one unusable row under ``reason`` and keep its id as an example."""
        self.unusable[reason] += 1
        ids = self.examples.setdefault(reason, [])
        if len(ids) < _EXAMPLES_PER_REASON:
            ids.append(rid)

    def as_dict(self) -> dict:
        """The report as plain JSON-serialisable data."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = dict(value) if isinstance(value, dict) else value
        return out

    def summary(self) -> str:
        """A few human-readable lines: what was read and written, and every unusable reason."""
        lines = [
            f"{self.dataset} [{self.split}] from {self.source}: read {self.read} rows"
            + (f" ({self.other_split} rows of other splits skipped)" if self.other_split else "")
            + f", wrote {self.written} preference records to {self.out_path}"
        ]
        n_bad = sum(self.unusable.values())
        if n_bad:
            lines.append(f"  unusable: {n_bad} rows")
            for reason, n in sorted(self.unusable.items()):
                lines.append(f"    {n:>7}  {reason}  (e.g. {', '.join(self.examples.get(reason, []))})")
        for note, n in sorted(self.notes.items()):
            lines.append(f"  note: {n} written records: {note}")
        if self.prompts_path is not None:
            lines.append(
                f"  prompts: wrote {self.prompts_written} unique prompts to {self.prompts_path}"
                f" ({self.prompts_duplicate} repeats merged)"
            )
            for reason, n in sorted(self.prompts_skipped.items()):
                lines.append(f"    {n:>7}  rows without a prompt record: {reason}")
        return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# Reading fields


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


def get_list(
    obj: Mapping, name: str, item_types: type | tuple[type, ...], at: Location, *, parent: str = ""
) -> list:
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
            raise ValueError(
                f"{option} {template!r} uses {shown}; it may only use plain fields among "
                + ", ".join("{" + a + "}" for a in allowed)
                + " (write {{ and }} for literal braces)"
            )
        used.append(name)
    return used


# ----------------------------------------------------------------------------------------------
# Reading sources


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


class _Part(NamedTuple):
    """The rows of one file (or one hub split)."""

    name: str  #: how errors name it
    rows: Any  #: a ``datasets.Dataset`` or a list of dicts
    lines: list[int] | None  #: the line of each row, when read line by line
    jsonl: bool  #: rows are the non-blank lines of the file


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


def _load_local_file(path: Path, cache_dir: str | None) -> _Part:
    """Read one local file with ``datasets``; fall back to the json module to locate a mixed-type row."""
    import datasets

    builder, kwargs, _ = _format(path)
    kwargs = dict(kwargs)
    if builder == "csv":
        # every cell as text, empty cells as "" (not null)
        kwargs.update(
            features=_csv_text_features(path, kwargs.get("sep", ",")), keep_default_na=False, na_filter=False
        )
    try:
        with _no_download_count():
            ds = datasets.load_dataset(
                builder, data_files=[str(path)], split="train", cache_dir=cache_dir, **kwargs
            )
    except Exception as err:  # datasets wraps pyarrow/pandas errors in several types
        cause = err.__cause__ or err
        if builder != "json" or path.name.lower().endswith(".gz"):
            raise RecordError(path, None, None, f"could not be read as {builder}: {cause}") from err
        log.warning(
            "%s: datasets could not read it (%s); reading it with the json module instead", path, cause
        )
        return _read_json_python(path)
    if builder == "json" and _has_json_feature(ds.features):
        # datasets stores a column of mixed types re-encoded; read exact values to check each row's type
        log.info("%s: a column holds values of several types; reading it with the json module", path)
        return _read_json_python(path)
    is_jsonl = builder == "json" and not _starts_with_bracket(path)
    return _Part(str(path), ds, None, is_jsonl)


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
        return fh.read(4096).lstrip().startswith(b"[")


def _read_json_python(path: Path) -> _Part:
    """Read a JSON array or JSONL file with the json module, keeping exact types and line numbers."""
    if _starts_with_bracket(path):
        import json

        try:
            rows = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as err:
            raise RecordError(path, None, None, f"is not valid JSON ({err})") from None
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise SourceError(
                    Location(str(path), i), None, f"must be a JSON object, got {type(row).__name__}"
                )
        return _Part(str(path), rows, None, False)
    pairs = list(iter_jsonl(path))
    return _Part(str(path), [obj for _, obj in pairs], [line for line, _ in pairs], True)


def _csv_text_features(path: Path, sep: str):
    """``datasets.Features`` reading every column of a CSV/TSV file as a string."""
    from datasets import Features, Value

    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", newline="") as fh:
        header = next(csv.reader(fh, delimiter=sep), None)
    if not header:
        raise RecordError(path, 1, None, "has no header line naming its columns")
    return Features({name: Value("string") for name in header})


def _load_hub(name: str, split: str, load: LoadOptions, default_config: str | None) -> _Part:
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
        raise RuntimeError(
            f"could not load {name!r} (config {config!r}, split {split!r}) from the Hugging Face Hub: {err}. "
            "Check the name, split and config, or download the release and pass its local path as the source."
        ) from err
    return _Part(f"{name} [{split}]", ds, None, False)


def _open_parts(
    source: str | os.PathLike, split: str, load: LoadOptions, default_config: str | None
) -> list[_Part]:
    """Every part (file or hub split) that holds the rows of ``split``."""
    path = Path(source).expanduser()
    if not path.exists():
        if not _is_hub_name(str(source)):
            raise RecordError(
                path, None, None, "not found: pass an existing file or folder, or a hub dataset name"
            )
        if load.split_field:
            raise ValueError(
                "split_field selects rows of a local copy; for a hub dataset pass the split itself"
            )
        return [_load_hub(str(source), split, load, default_config)]
    if load.config or load.revision:
        raise ValueError(
            f"config and revision apply to hub datasets, but {source} is a local path: drop them"
        )
    if load.data_dir:
        path = path / load.data_dir
        if not path.is_dir():
            raise RecordError(
                path, None, None, "not found: data_dir must name a folder inside the source folder"
            )
    if path.is_file():
        if _format(path) is None:
            raise RecordError(
                path, None, None, f"has an unsupported format: use one of {', '.join(_FORMATS)} (.gz allowed)"
            )
        files = [path]
    else:
        files = _split_files(path, split, load.split_field is not None)
    return [_load_local_file(f, load.cache_dir) for f in files]


def _rows(
    parts: list[_Part], split: str, split_field: str | None, report: ConvertReport
) -> Iterator[tuple[Location, dict]]:
    """Yield ``(location, row)`` for each row of the split, counting rows of other splits."""
    for part in parts:
        for i, row in enumerate(part.rows):
            at = Location(part.name, i, part.lines[i] if part.lines else None, part.jsonl)
            if split_field is not None and get(row, split_field, str, at) != split:
                report.other_split += 1
                continue
            yield at, row


def _check_columns(parts: list[_Part], columns: Sequence[str]) -> None:
    """Fail early, naming the file, when a column the adapter needs is absent from a whole file."""
    for part in parts:
        names = getattr(part.rows, "column_names", None)
        if names is None:  # rows read with the json module: the keys of any row
            names = list(dict.fromkeys(key for row in part.rows for key in row))
        for col in columns:
            if col not in names and col.split(".")[0] not in names:
                raise RecordError(
                    part.name,
                    None,
                    col,
                    f"is not a column of this source (it has {', '.join(names)}): "
                    "fix the source, or tell the adapter which column to use",
                )


# ----------------------------------------------------------------------------------------------
# Converting and writing


def _unusable(pair: dict) -> str | None:
    """The shared reason a well-formed pair cannot be trained on (the checks of load_preferences)."""
    if not pair["prompt"].strip():
        return EMPTY_PROMPT
    if not pair["chosen"].strip() or not pair["rejected"].strip():
        return EMPTY_RESPONSE
    if pair["chosen"].strip() == pair["rejected"].strip():
        return IDENTICAL
    return None


class _UniqueIds:
    """Hands out ids, suffixing ``#2``, ``#3`` ... to repeats and counting them in ``notes``."""

    def __init__(self, notes: Counter, what: str):
        self.next_suffix: dict[str, int] = {}  # id handed out -> the suffix its next repeat gets
        self.notes, self.what = notes, what

    def __call__(self, rid: str) -> str:
        """``rid`` if unused so far, else ``rid#n`` for its n-th use."""
        if rid not in self.next_suffix:
            self.next_suffix[rid] = 2
            return rid
        n = self.next_suffix[rid]
        while f"{rid}#{n}" in self.next_suffix:
            n += 1
        self.next_suffix[rid] = n + 1
        self.next_suffix[f"{rid}#{n}"] = 2
        self.notes[f"repeated source id, {self.what} id suffixed #n"] += 1
        return f"{rid}#{n}"


def convert_source(
    dataset: str,
    source: str | os.PathLike,
    split: str,
    out_path: str | os.PathLike,
    convert_row: Callable[[dict, Location], Converted],
    *,
    columns: Sequence[str] = (),
    load: LoadOptions | None = None,
    default_config: str | None = None,
    prompts_out: str | os.PathLike | None = None,
) -> ConvertReport:
    """Read ``split`` of ``source``, convert each row with ``convert_row`` and write the records.

    Args:
        dataset: the adapter's name, used in default ids and as every record's ``source``.
        source: hub dataset name, or local file / folder holding a copy of the release.
        split: which split to read (for a single local file, only used in ids).
        out_path: where to write the preference JSONL (atomically).
        convert_row: the adapter's row function; it raises :class:`SourceError` on malformed rows.
        columns: columns every row needs (dotted names: their first part); a file lacking one fails
            before any row is read.
        load: hub / local reading options.
        default_config: hub configuration used when ``load.config`` is unset.
        prompts_out: also write unique evaluation prompts here (atomically), if the adapter makes them.
    """
    load = load or LoadOptions()
    out_path = Path(out_path)
    report = ConvertReport(
        dataset,
        str(source),
        split,
        str(out_path),
        prompts_path=None if prompts_out is None else str(prompts_out),
    )
    parts = _open_parts(source, split, load, default_config)
    report.files = [p.name for p in parts]
    for part in parts:
        for target in (out_path, prompts_out):
            if target is not None and os.path.abspath(target) == os.path.abspath(part.name):
                raise ValueError(
                    f"output {target} would overwrite the source file {part.name}: write elsewhere"
                )
    _check_columns(parts, [c for c in (*columns, load.split_field) if c])
    # default ids name the data_dir too, so subsets converted one by one can be concatenated
    id_prefix = dataset if not load.data_dir else f"{dataset}-{load.data_dir.strip('/').replace('/', '-')}"
    pair_ids, prompt_ids = _UniqueIds(report.notes, "pair"), _UniqueIds(report.notes, "prompt")
    prompts: dict[str, dict] = {}  # prompt text -> prompt record, first occurrence wins

    def records() -> Iterator[dict]:
        from tqdm import tqdm

        total = sum(len(p.rows) for p in parts)
        rows = _rows(parts, split, load.split_field, report)
        for at, row in tqdm(rows, total=total, desc=f"{dataset} [{split}]", unit="rows", disable=None):
            out = convert_row(row, at)
            rid = str(out.id) if out.id is not None else f"{id_prefix}-{split}-{report.read}"
            report.read += 1
            if prompts_out is not None:
                _collect_prompt(out.prompt, rid, prompts, prompt_ids, report)
            reason = out.pair if isinstance(out.pair, str) else _unusable(out.pair)
            if reason is not None:
                report.count_unusable(reason, rid)
                continue
            record = {
                "id": pair_ids(rid),
                "prompt": out.pair["prompt"],
                "chosen": out.pair["chosen"],
                "rejected": out.pair["rejected"],
                "source": dataset,
            }
            if out.pair.get("meta"):
                record["meta"] = out.pair["meta"]
            if out.note:
                report.notes[out.note] += 1
            report.written += 1
            yield record

    write_jsonl(out_path, records())
    if report.read == 0:
        log.warning("%s [%s]: the source held no rows for this split", dataset, split)
    if prompts_out is not None:
        report.prompts_written = write_jsonl(prompts_out, prompts.values())
    log.info("%s", report.summary())
    if report.unusable:
        log.warning(
            "%s [%s]: %d of %d rows unusable (%s)",
            dataset,
            split,
            sum(report.unusable.values()),
            report.read,
            ", ".join(f"{n} {why}" for why, n in sorted(report.unusable.items())),
        )
    return report


def _collect_prompt(
    prompt: dict | None, rid: str, prompts: dict[str, dict], ids: _UniqueIds, report: ConvertReport
) -> None:
    """Keep the first prompt record of each prompt text; count rows that give none."""
    if prompt is None:
        report.prompts_skipped["no prompt for this row"] += 1
    elif not prompt["prompt"].strip():
        report.prompts_skipped[EMPTY_PROMPT] += 1
    elif not (prompt.get("reference") or "").strip():
        report.prompts_skipped["no reference"] += 1
    elif prompt["prompt"] in prompts:
        report.prompts_duplicate += 1
    else:
        pid = ids(str(prompt.get("id") if prompt.get("id") is not None else rid))
        prompts[prompt["prompt"]] = {"id": pid, "prompt": prompt["prompt"], "reference": prompt["reference"]}


# ----------------------------------------------------------------------------------------------
# Command-line helpers for data/<name>/prepare.py


def source_parser(
    description: str | None, *, default_source: str | None, default_split: str
) -> argparse.ArgumentParser:
    """A parser with the options every ``prepare.py`` shares: source, split, output and reading options."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
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
    parser.add_argument(
        "--split-field", help="local copies: read all files, keep rows whose column equals --split"
    )
    return parser


def run_cli(main: Callable[[], ConvertReport]) -> ConvertReport:
    """Run a ``prepare.py`` main: log warnings to stderr; a data or option error exits with its message."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return main()
    except (ValueError, KeyError, RuntimeError) as err:  # RecordError is a ValueError
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
