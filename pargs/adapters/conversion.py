"""Converting a source with an adapter's row function: counting what cannot be used, writing the rest.

An adapter turns one row of a public release into a :class:`Converted` (a preference pair, or the
reason the row is unusable, plus an optional evaluation prompt); :func:`convert_source` opens the
source (:mod:`pargs.adapters.sources`), hands each row and its location to the adapter (which reads
fields with :mod:`pargs.adapters.fields`) and does the rest:

- **Counting.** Well-formed rows that cannot be trained on are counted per reason in the
  :class:`ConvertReport`, with the first few ids of each, never silently dropped:
  ``read == written + sum(unusable.values())``. The checks shared by all adapters match
  :func:`pargs.records.load_preferences`, so every written record loads without ``drop_unusable``.
- **Splits.** A release whose rows name their split in a column (``split_column``, e.g. TL;DR's
  ``split``: train / valid1 / valid2) is filtered by it even when ``LoadOptions.split_field`` is unset,
  so converting one file of such a release never mixes splits; the skipped rows are counted by split.
- **Writing.** Records stream into :func:`pargs.records.write_jsonl` (temporary file, then rename):
  an error part-way leaves any existing output untouched. Ids are the source's own id when it has
  one (a repeated id gets a ``#2``, ``#3`` ... suffix, counted in ``notes``), else
  ``"{dataset}-{split}-{row_index}"`` (``"{dataset}-{data_dir}-{split}-{row_index}"`` when a
  ``data_dir`` is read); every record's ``source`` names the dataset.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import NamedTuple

from pargs.adapters.fields import Location, get
from pargs.adapters.sources import LoadOptions, Part, check_columns, column_names, open_parts
from pargs.errors import ConfigError
from pargs.records import write_jsonl

log = logging.getLogger(__name__)

__all__ = ["EMPTY_PROMPT", "EMPTY_RESPONSE", "IDENTICAL", "ConvertReport", "Converted", "convert_source"]

# Reasons shared by all adapters (adapter modules define their own as well).
EMPTY_PROMPT = "empty prompt"
EMPTY_RESPONSE = "empty response"
IDENTICAL = "identical responses"

# How many ids of each unusable reason the report keeps as examples.
_EXAMPLES_PER_REASON = 3


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
    other_splits: Counter = field(default_factory=Counter)  #: split named by a skipped row -> rows
    split_column: str | None = None  #: the column that selected the split's rows (split_field or the adapter's)
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

    def _skipped(self) -> str:
        counts = ", ".join(f"{n} {name}" for name, n in sorted(self.other_splits.items()))
        return f"{counts}, by column {self.split_column!r}"

    def summary(self) -> str:
        """A few human-readable lines: what was read and written, and every unusable reason."""
        lines = [
            f"{self.dataset} [{self.split}] from {self.source}: read {self.read} rows"
            + (f" ({self.other_split} rows of other splits skipped: {self._skipped()})" if self.other_split else "")
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


def _rows(parts: list[Part], wanted: set[str], report: ConvertReport) -> Iterator[tuple[Location, dict]]:
    """Yield ``(location, row)`` for each row of the split (its ``report.split_column`` in ``wanted``, when
    set), counting rows of other splits."""
    column = report.split_column
    for part in parts:
        for i, row in enumerate(part.rows):
            at = Location(part.name, i, part.lines[i] if part.lines else None, part.jsonl)
            if column is not None and (named := get(row, column, str, at)) not in wanted:
                report.other_split += 1
                report.other_splits[named] += 1
                continue
            yield at, row


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
    split_column: str | None = None,
    split_values: Mapping[str, Sequence[str]] | None = None,
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
        split_column: a column in which the release's rows name their split; without ``load.split_field``,
            a source that has it in every file keeps only the rows of ``split`` (a split that no row names
            fails), so a file mixing splits is never converted whole.
        split_values: split -> the values of ``split_column`` that make it (default: the split's own name),
            e.g. TL;DR's ``{"validation": ["valid1", "valid2"]}``; also when ``load.split_field`` names it.
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
    parts = open_parts(source, split, load, default_config)
    report.files = [p.name for p in parts]
    for part in parts:
        for target in (out_path, prompts_out):
            if target is not None and os.path.abspath(target) == os.path.abspath(part.name):
                raise ConfigError(f"output {target} would overwrite the source file {part.name}: write elsewhere")
    check_columns(parts, [c for c in (*columns, load.split_field) if c])
    report.split_column = load.split_field
    by_default = load.split_field is None and split_column is not None
    if by_default and all(split_column in column_names(p) for p in parts):
        report.split_column = split_column
    wanted = {split}
    if report.split_column is not None and report.split_column == split_column:
        wanted |= set((split_values or {}).get(split, ()))
    # default ids name the data_dir too, so subsets converted one by one can be concatenated
    id_prefix = dataset if not load.data_dir else f"{dataset}-{load.data_dir.strip('/').replace('/', '-')}"
    pair_ids, prompt_ids = _UniqueIds(report.notes, "pair"), _UniqueIds(report.notes, "prompt")
    prompts: dict[str, dict] = {}  # prompt text -> prompt record, first occurrence wins

    def records() -> Iterator[dict]:
        from tqdm import tqdm

        total = sum(len(p.rows) for p in parts)
        rows = _rows(parts, wanted, report)
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
        if by_default and report.split_column and not report.read and report.other_split:
            raise ConfigError(
                f"{source}: no row is of split {split!r}: the rows name their split in column "
                f"{split_column!r} ({', '.join(f'{n} {name}' for name, n in sorted(report.other_splits.items()))})"
                f"; pass one of them as the split, or set split_field (--split-field) to another column"
            )

    write_jsonl(out_path, records())
    if report.other_split and report.split_column != load.split_field:
        log.warning(
            "%s [%s]: the rows name their split in column %r: kept %d rows of %s, skipped %s",
            dataset,
            split,
            split_column,
            report.read,
            "/".join(sorted(wanted)),
            report._skipped(),
        )
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
            extra={IN_SUMMARY: True},  # report.summary() lists them with examples: prepare scripts print that
        )
    return report


#: a log record's attribute saying that :meth:`ConvertReport.summary` says the same (a script printing the
#: summary drops the record, so the user reads it once)
IN_SUMMARY = "in_summary"


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
