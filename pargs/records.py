"""The project's JSONL schema: reading, validating and writing records.

Preference record: ``{"id", "prompt", "chosen", "rejected"}`` (+ optional ``"source"``, ``"meta"``,
``"margin"``: a number subtracted from r(chosen) - r(rejected) in the loss).
Prompt record: ``{"id", "prompt"}`` (+ optional ``"reference"``: a string or a list of strings).
SFT record: ``{"id", "prompt", "response"}``.
Rollout record: ``{"id", "prompt", "response", "reward"}`` (+ optional ``"method"``, ``"sample"``,
``"stop"``): a sampled response and its reward, as ``pargs predict`` writes them (``id`` is the prompt's
id, so one prompt's rollouts differ in ``sample``).

Every problem is reported as a :class:`RecordError` naming the file, the 1-based line number and
the field, so a user can open the file and fix the line. Malformed input (bad JSON, bad UTF-8,
missing or mistyped fields, duplicate ids) always fails. Well-formed records that cannot be
trained on (an empty response, chosen identical to rejected) fail too, unless the caller asks to
drop them, in which case they are counted per reason and the counts are returned, never lost.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pargs.atomic_files import replace_file
from pargs.errors import ConfigError

__all__ = [
    "RecordError",
    "LoadReport",
    "PREFERENCE_SCHEMA",
    "PROMPT_SCHEMA",
    "SFT_SCHEMA",
    "ROLLOUT_SCHEMA",
    "iter_jsonl",
    "load_records",
    "load_preferences",
    "load_prompts",
    "load_sft",
    "load_rollouts",
    "write_jsonl",
    "json_line",
]


class RecordError(ConfigError):
    """A record that cannot be used, located by file, line and field."""

    def __init__(self, path: str | os.PathLike, line: int | None, field: str | None, message: str):
        self.path, self.line, self.field = str(path), line, field
        where = self.path + (f", line {line}" if line is not None else "")
        what = f" field '{field}'" if field else ""
        super().__init__(f"{where}:{what} {message}")


@dataclass(frozen=True)
class Schema:
    """Required and optional fields of one record type, with the types JSON must give them."""

    name: str
    required: dict[str, tuple[type, ...]]
    optional: dict[str, tuple[type, ...]]
    #: fields holding response text: an empty one makes the record unusable for training
    responses: tuple[str, ...] = ()


_TEXT = (str,)
_ID = (str, int)
PREFERENCE_SCHEMA = Schema(
    "preference",
    required={"id": _ID, "prompt": _TEXT, "chosen": _TEXT, "rejected": _TEXT},
    optional={"source": _TEXT, "meta": (dict,), "margin": (int, float)},
    responses=("chosen", "rejected"),
)
PROMPT_SCHEMA = Schema(
    "prompt",
    required={"id": _ID, "prompt": _TEXT},
    optional={"reference": (str, list), "meta": (dict,)},
)
SFT_SCHEMA = Schema(
    "sft",
    required={"id": _ID, "prompt": _TEXT, "response": _TEXT},
    optional={"source": _TEXT, "meta": (dict,)},
    responses=("response",),
)

ROLLOUT_SCHEMA = Schema(
    "rollout",
    required={"id": _ID, "prompt": _TEXT, "response": _TEXT, "reward": (int, float)},
    optional={"method": _TEXT, "sample": (int,), "stop": _TEXT, "meta": (dict,)},
)


@dataclass
class LoadReport:
    """What a load kept and what it dropped (by reason); ``dropped`` is empty unless asked to drop."""

    path: str
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    lines: int = 0  #: records read (non-blank lines)

    def summary(self) -> str:
        parts = [f"{self.path}: kept {self.kept} records"]
        if self.dropped:
            parts.append("dropped " + ", ".join(f"{n} ({why})" for why, n in sorted(self.dropped.items())))
        return "; ".join(parts)


def iter_jsonl(path: str | os.PathLike) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)`` for each non-blank line; fail on bad UTF-8, JSON or non-objects.

    A UTF-8 byte order mark at the start of the file is skipped (as ``utf-8-sig`` reads it), like the
    ``data/*/prepare.py`` conversions do.
    """
    path = Path(path)
    if path.is_dir():
        raise RecordError(path, None, None, "is a directory; a JSONL file is expected here")
    if not path.is_file():
        raise RecordError(path, None, None, "file not found")
    with open(path, "rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            try:
                text = raw.decode("utf-8-sig" if line_no == 1 else "utf-8").rstrip("\r\n")
            except UnicodeDecodeError as err:
                raise RecordError(
                    path, line_no, None, f"is not valid UTF-8 ({err.reason} at byte {err.start})"
                ) from None
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as err:
                raise RecordError(path, line_no, None, json_problem(err, text)) from None
            if not isinstance(obj, dict):
                raise RecordError(path, line_no, None, f"must be a JSON object, got {type(obj).__name__}")
            yield line_no, obj


def json_problem(err: json.JSONDecodeError, text: str) -> str:
    """What is wrong with a line that is not JSON: cut off (a torn line), or where it goes wrong."""
    if err.pos >= len(text.rstrip()) or err.msg.startswith("Unterminated string"):
        return (
            f"is not valid JSON: it ends (column {len(text) + 1}) before its value does, a torn line such as "
            "an interrupted write leaves; complete it or delete it"
        )
    what = err.msg[: -len(" at")] if err.msg.endswith(" at") else err.msg
    return f"is not valid JSON ({what} at column {err.colno})"


def _check_fields(obj: dict, schema: Schema, path: Path, line: int) -> None:
    for name, types in schema.required.items():
        if name not in obj:
            raise RecordError(path, line, name, f"is missing (a {schema.name} record needs {sorted(schema.required)})")
        if not isinstance(obj[name], types) or isinstance(obj[name], bool):
            raise RecordError(
                path,
                line,
                name,
                f"must be {' or '.join(t.__name__ for t in types)}, got {type(obj[name]).__name__}",
            )
    for name, types in schema.optional.items():
        if name in obj and obj[name] is not None and not isinstance(obj[name], types):
            raise RecordError(
                path, line, name, f"must be {' or '.join(t.__name__ for t in types)}, got {type(obj[name]).__name__}"
            )
    ref = obj.get("reference")
    if isinstance(ref, list) and not all(isinstance(r, str) for r in ref):
        raise RecordError(path, line, "reference", "must be a string or a list of strings")


def _unusable(obj: dict, schema: Schema) -> tuple[str, str] | None:
    """Return ``(field, reason)`` when a well-formed record cannot be trained on."""
    for name in schema.responses:
        if not obj[name].strip():
            return name, "empty response"
    if schema is PREFERENCE_SCHEMA and obj["chosen"].strip() == obj["rejected"].strip():
        return "rejected", "identical to chosen"
    return None


def _why_none(report: LoadReport) -> str:
    """Why a load kept nothing: the file is empty, or every record was dropped."""
    if not report.lines:
        return ": the file is empty (no non-blank line)"
    return f": all {report.lines} were dropped ({', '.join(f'{n} {why}' for why, n in sorted(report.dropped.items()))})"


def load_records(
    path: str | os.PathLike, schema: Schema, drop_unusable: bool = False, with_line: bool = False
) -> tuple[list[dict], LoadReport]:
    """Read and validate every record of ``path``.

    Args:
        path: a JSONL file in the project's schema.
        schema: which record type the file holds.
        drop_unusable: drop (and count) records that are well formed but unusable instead of failing.
        with_line: add ``_line``, each record's 1-based line number, for error messages further on.
    """
    path = Path(path)
    report = LoadReport(str(path))
    records: list[dict] = []
    seen: dict[str, int] = {}
    for line_no, obj in iter_jsonl(path):
        report.lines += 1
        _check_fields(obj, schema, path, line_no)
        rid = str(obj["id"])
        if rid in seen:
            raise RecordError(path, line_no, "id", f"duplicate id {rid!r} (first seen on line {seen[rid]})")
        seen[rid] = line_no
        problem = _unusable(obj, schema)
        if problem is not None:
            if not drop_unusable:
                raise RecordError(
                    path,
                    line_no,
                    problem[0],
                    f"{problem[1]}: fix the record, or set drop_unusable to count and skip such records",
                )
            report.dropped[problem[1]] += 1
            continue
        records.append(dict(obj, id=rid, _line=line_no) if with_line else dict(obj, id=rid))
    if not records:
        raise RecordError(path, None, None, f"holds no usable {schema.name} records" + _why_none(report))
    report.kept = len(records)
    return records, report


def load_preferences(
    path: str | os.PathLike, drop_unusable: bool = False, with_line: bool = False
) -> tuple[list[dict], LoadReport]:
    """Load preference pairs (see :data:`PREFERENCE_SCHEMA`; ``with_line``: add ``_line``)."""
    return load_records(path, PREFERENCE_SCHEMA, drop_unusable, with_line)


def load_prompts(path: str | os.PathLike, with_line: bool = False) -> list[dict]:
    """Load prompt records (see :data:`PROMPT_SCHEMA`); references become lists (``with_line``: add ``_line``)."""
    records, _ = load_records(path, PROMPT_SCHEMA, with_line=with_line)
    for rec in records:
        ref = rec.get("reference")
        rec["reference"] = [] if ref is None else [ref] if isinstance(ref, str) else list(ref)
    return records


def load_sft(
    path: str | os.PathLike, drop_unusable: bool = False, with_line: bool = False
) -> tuple[list[dict], LoadReport]:
    """Load supervised fine-tuning records (see :data:`SFT_SCHEMA`; ``with_line``: add ``_line``)."""
    return load_records(path, SFT_SCHEMA, drop_unusable, with_line)


def rollout_complete(record: dict) -> bool:
    """Whether a rollout's response is finished (EOS or a stop string): its ``stop`` is not ``"length"``."""
    return record.get("stop", "eos") != "length"


def load_rollouts(
    path: str | os.PathLike, drop_unusable: bool = False, with_line: bool = False
) -> tuple[list[dict], LoadReport]:
    """Load rollout records (see :data:`ROLLOUT_SCHEMA`) from a JSONL file, or from every
    ``predictions-rank*.jsonl`` of a ``pargs predict`` output directory.

    A rollout is identified by ``(id, method, sample)``; a repeated one fails. A response cut off at
    the length limit with no text left has no token to learn from: it fails unless ``drop_unusable``.
    ``with_line`` adds ``_file`` and ``_line``, where each record came from, for error messages further on.
    """
    path = Path(path)
    files = sorted(path.glob("predictions-rank*.jsonl")) if path.is_dir() else [path]
    if not files:
        raise RecordError(path, None, None, "holds no predictions-rank*.jsonl files")
    report = LoadReport(str(path))
    records: list[dict] = []
    seen: dict[tuple, str] = {}
    for file in files:
        for line_no, obj in iter_jsonl(file):
            report.lines += 1
            _check_fields(obj, ROLLOUT_SCHEMA, file, line_no)
            if not math.isfinite(obj["reward"]):
                raise RecordError(file, line_no, "reward", f"must be a finite number, got {obj['reward']}")
            key = (str(obj["id"]), obj.get("method"), obj.get("sample", 0))
            if key in seen:
                raise RecordError(
                    file, line_no, "id", f"duplicate rollout (id, method, sample) = {key} (first seen at {seen[key]})"
                )
            seen[key] = f"{file}, line {line_no}"
            if not obj["response"].strip() and not rollout_complete(obj):
                if not drop_unusable:
                    raise RecordError(
                        file,
                        line_no,
                        "response",
                        "empty and unfinished: no token to learn from; set "
                        "drop_unusable to count and skip such records",
                    )
                report.dropped["empty unfinished response"] += 1
                continue
            records.append(
                dict(obj, id=str(obj["id"]), _file=str(file), _line=line_no)
                if with_line
                else dict(obj, id=str(obj["id"]))
            )
    if not records:
        raise RecordError(path, None, None, "holds no usable rollout records" + _why_none(report))
    report.kept = len(records)
    return records, report


def write_jsonl(path: str | os.PathLike, records: Iterable[dict]) -> int:
    """Write ``records`` atomically (:func:`pargs.atomic_files.replace_file`); return how many were written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = 0

    def lines() -> Iterator[bytes]:  # streamed: a large file is never held in memory at once
        nonlocal written
        for rec in records:
            yield json_line(rec).encode("utf-8")
            written += 1

    replace_file(path, lines())
    return written


def json_line(record: dict) -> str:
    """``record`` as one JSON line. A non-finite number (NaN, inf) is not JSON: it raises ``ValueError`` naming
    the field, instead of writing a line that strict readers refuse (Python's json would write ``NaN``)."""
    try:
        return json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n"
    except ValueError:
        key = next((k for k, v in record.items() if isinstance(v, float) and not math.isfinite(v)), None)
        where = f"field {key!r} is {record[key]}" if key else "a nested value is"
        raise ValueError(f"record {record.get('id')!r}: {where}, not a finite number") from None
