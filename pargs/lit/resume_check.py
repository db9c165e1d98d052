"""Whether the lines already in a predictions directory may count as this run's, decided before anything
is decoded.

Resume skips every (prompt id, method, sample) already written, so a line is kept only when what made it
is what would make it now:

- the method's recorded settings (:mod:`pargs.lit.manifest`, :mod:`pargs.lit.fingerprint`) equal this
  config's: its fields, the generation settings, the seed, and the content of the policy, scorer and
  evaluation reward models;
- the line's prompt and references equal what the prompt file holds for its id now (adding prompts or
  raising ``limit`` just decodes the new ones).

Lines of prompts the file no longer holds (removed, or beyond a lowered ``limit``) are set aside: they stay
in the files, the run says how many, and the manifest records the prompt ids of this run, so
``pargs report`` leaves them out too.

``on_change`` says what to do with the lines that fail: ``refuse`` (default) stops the run with a message
naming each method and setting that changed (old -> new); ``restart`` removes those lines (rewriting the
files atomically; other methods' lines stay) so they are decoded again; ``adopt`` records this config's
settings for lines that have no record (a directory written before pargs kept one) and still refuses
changed ones. Methods that are no longer in the config keep their lines unchecked (the report reads them).
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pargs.atomic_files import replace_file
from pargs.errors import ConfigError
from pargs.lit.manifest import MANIFEST, as_recorded, differences, short, write_manifest
from pargs.models.identity import FileDigests
from pargs.records import RecordError, json_problem

log = logging.getLogger(__name__)

ON_CHANGE = ("refuse", "restart", "adopt")
_SHOWN = 6  # settings (or prompt ids) listed per method in a message


@dataclass
class Lines:
    """What the complete lines of a predictions directory hold."""

    counts: Counter = field(default_factory=Counter)  #: lines per method
    stale: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  #: method -> ids, other prompt
    absent: Counter = field(default_factory=Counter)  #: prompt id -> lines, for ids the prompt file does not hold


def scan_lines(files: list[Path], prompts: dict[str, tuple[str, Any]] | None) -> Lines:
    """Count each method's lines; list those whose prompt or references differ from ``prompts[id]``."""
    found = Lines()
    for path in files:
        for _, rec in complete_lines(path):
            found.counts[rec["method"]] += 1
            if prompts is None:
                continue
            now = prompts.get(str(rec["id"]))
            if now is None:
                found.absent[str(rec["id"])] += 1
            elif (rec.get("prompt"), rec.get("reference", [])) != now:
                found.stale[rec["method"]].append(str(rec["id"]))
    return found


def complete_lines(path: Path, raw: bool = False) -> Iterator[tuple[Any, dict]]:
    """``(line number, record)`` of each complete line of a prediction file (``raw``: ``(bytes, record)``); a torn
    last line (no newline, an interrupted write) is left out. A line in the middle that is not a prediction is
    damage, not an interruption: a :class:`RecordError` names the file and the line, and nothing is removed."""
    with open(path, "rb") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.endswith(b"\n"):
                return
            problem = None
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as err:
                problem = json_problem(err, line.decode("utf-8", "replace").rstrip("\r\n"))
            except UnicodeDecodeError:
                problem = "is not valid UTF-8"
            else:
                if not isinstance(rec, dict) or not {"id", "method", "sample"} <= rec.keys():
                    problem = "is not a prediction (a JSON object with id, method and sample); delete it"
            if problem:
                raise RecordError(
                    path,
                    number,
                    None,
                    f"{problem}. It is in the middle of the file: pargs removes nothing there (it cuts off only the "
                    "torn last line an interrupted run leaves); run again once the line is repaired or deleted (a "
                    "deleted prediction is decoded again), or write to another directory",
                )
            yield (line if raw else number), rec


def current_prompts(datamodule) -> tuple[dict[str, tuple[str, Any]] | None, str]:
    """``{id: (prompt, references)}`` of a datamodule that has read its prompt records (pargs'
    PromptDataModule), and the prompt file's name; None when it exposes none."""
    records = getattr(datamodule, "records", None)
    if not records:
        return None, "the prompt file"
    return (
        {str(r["id"]): (r["prompt"], r.get("reference", [])) for r in records},
        str(records[0].get("_file", "the prompt file")),
    )


def drop_lines(files: list[Path], methods: set[str], keys: set[tuple[str, str]]) -> int:
    """Remove the lines of ``methods`` and of (method, id) ``keys`` from ``files``; each file is replaced
    atomically and only when it changes. Returns the number of lines removed."""
    removed = 0
    for path in files:
        keep, dropped = [], 0
        for raw, rec in complete_lines(path, raw=True):
            if rec["method"] in methods or (rec["method"], str(rec["id"])) in keys:
                dropped += 1
            else:
                keep.append(raw)
        if dropped:
            replace_file(path, keep)
            removed += dropped
    return removed


def _n_lines(n: int) -> str:
    return f"{n} line" if n == 1 else f"{n} lines"


def _changes(diffs: list[tuple[str, Any, Any]]) -> str:
    shown = ", ".join(f"{key} {short(a)} -> {short(b)}" for key, a, b in diffs[:_SHOWN])
    return shown + (f" and {len(diffs) - _SHOWN} more" if len(diffs) > _SHOWN else "")


def _ids(ids: list[str]) -> str:
    unique = list(dict.fromkeys(ids))
    shown = ", ".join(repr(i) for i in unique[:_SHOWN])
    return shown + (f" and {len(unique) - _SHOWN} more" if len(unique) > _SHOWN else "")


def check_and_record(
    output_dir: Path,
    files: list[Path],
    settings: dict[str, dict] | None,
    prompts: dict[str, tuple[str, Any]] | None,
    prompt_file: str,
    on_change: str,
    digests: FileDigests,
    manifest: dict | None,
) -> None:
    """Apply ``on_change`` to the lines that this config would not make (module docstring), then record
    this config's settings in the manifest. ``settings``: ``{method: settings}`` (None: a module that
    records none; only the prompts are checked)."""
    lines = scan_lines(files, prompts)
    recorded = (manifest or {}).get("methods", {})
    changed, unrecorded = {}, []
    for name, now in (settings or {}).items():
        if not lines.counts[name]:
            continue  # nothing written yet: its record, if any, binds nothing
        if name not in recorded:
            unrecorded.append(name)
            continue
        diffs = differences(recorded[name].get("settings", {}), as_recorded(now))
        if diffs:
            changed[name] = diffs
    stale = {
        m: ids
        for m, ids in lines.stale.items()
        if m not in changed and m not in unrecorded and (settings is None or m in settings)
    }
    gone = sorted(m for m in lines.counts if settings is not None and m not in settings)
    if gone:
        log.info(
            "%s: the lines of %s (not in this config) are kept as they are, not checked against it",
            output_dir,
            ", ".join(f"{m!r} ({lines.counts[m]})" for m in gone),
        )

    refused_unrecorded = unrecorded if on_change == "refuse" else []
    if on_change != "restart" and (changed or refused_unrecorded or stale):
        raise ConfigError(
            _refusal(output_dir, lines, changed, refused_unrecorded, stale, prompt_file, manifest is None)
        )
    if on_change == "restart" and (changed or unrecorded or stale):
        keys = {(m, i) for m, ids in stale.items() for i in ids}
        removed = drop_lines(files, set(changed) | set(unrecorded), keys)
        for name, diffs in changed.items():
            log.warning(
                "on_change restart: removed the %s of method %r (%s); it is decoded again",
                _n_lines(lines.counts[name]),
                name,
                _changes(diffs),
            )
        if unrecorded:
            log.warning(
                "on_change restart: removed the lines of %s (no record of their settings); decoded again",
                ", ".join(f"{m!r} ({lines.counts[m]})" for m in unrecorded),
            )
        if stale:
            log.warning(
                "on_change restart: removed %s whose prompt differs from %s (ids %s); decoded again",
                _n_lines(sum(map(len, stale.values()))),
                prompt_file,
                _ids([i for ids in stale.values() for i in ids]),
            )
        log.info("%s: %d lines removed in all", output_dir, removed)
    elif unrecorded:  # adopt
        log.warning(
            "on_change adopt: the lines of %s had no record of their settings; this config's are recorded for them",
            ", ".join(f"{m!r} ({lines.counts[m]})" for m in unrecorded),
        )
    if lines.absent:
        log.warning(
            "%s: set aside %s of %d prompts that %s no longer holds (ids %s): kept in the files, left out of "
            "pargs report",
            output_dir,
            _n_lines(sum(lines.absent.values())),
            len(lines.absent),
            prompt_file,
            _ids(list(lines.absent)),
        )
    if settings is None:
        return
    methods = {m: entry for m, entry in recorded.items() if m not in settings}
    methods.update({m: {"settings": as_recorded(now)} for m, now in settings.items()})
    cache = {path: entry for path, entry in digests.cache.items() if os.path.exists(path)}
    record = {"methods": methods, "file_digests": cache}
    if prompts is not None:
        record["prompts"] = {"file": prompt_file, "ids": sorted(prompts)}
    write_manifest(output_dir, record)


def _refusal(
    output_dir: Path,
    lines: Lines,
    changed: dict,
    unrecorded: list[str],
    stale: dict,
    prompt_file: str,
    no_manifest: bool,
) -> str:
    problems = []
    if changed:
        problems.append(
            f"{output_dir} holds predictions made with other settings than this config's: "
            + "; ".join(f"method {m!r} ({_n_lines(lines.counts[m])}): {_changes(d)}" for m, d in changed.items())
        )
    if unrecorded:
        why = f"no {MANIFEST}: written before pargs kept one" if no_manifest else f"none in its {MANIFEST}"
        problems.append(
            f"{output_dir} holds predictions with no record of the settings that made them ({why}): "
            + ", ".join(f"method {m!r} ({_n_lines(lines.counts[m])})" for m in unrecorded)
        )
    if stale:
        ids = [i for m in stale for i in stale[m]]
        problems.append(
            f"{output_dir} holds {_n_lines(len(ids))} decoded from another prompt or other references "
            f"than {prompt_file} holds now for their id (ids {_ids(ids)})"
        )
    how = ["write to another directory (pargs predict --predictions DIR)"]
    if changed:
        name = next(iter(changed))
        how.append(f"keep both under another name (--method {name}.name=NEW_NAME)")
    how.append("decode them again here (--on_change restart removes these lines, and only these)")
    if unrecorded:
        how.append("if this config made the unrecorded lines, keep them (--on_change adopt)")
    return (
        "; ".join(problems) + ". Resuming would count them as this config's: " + ", ".join(how[:-1]) + f" or {how[-1]}"
    )
