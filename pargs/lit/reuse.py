"""Copy another predictions directory's lines that this config would write, instead of decoding them again.

``pargs predict -c CONFIG --method pargs.beta=3 --predictions runs/beta3`` changes one method, but the new
directory needs every method's lines for a complete report. A method whose recorded settings in the source
directory (:mod:`pargs.lit.manifest`) equal this config's (:func:`pargs.lit.manifest.differences` finds none:
the same fields, limits, seed, noise key and model contents) writes the same lines, so its lines are copied,
one per (prompt id, method, sample) not yet in the output directory, and only for prompts whose text and
references equal what the prompt file holds now. Everything else is decoded.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any

from pargs.lit.manifest import as_recorded, differences, read_manifest
from pargs.lit.regular_files import append_file
from pargs.lit.resume_check import complete_lines

log = logging.getLogger(__name__)


def reusable_methods(source: Path, settings: dict[str, dict]) -> set[str]:
    """The methods whose settings recorded in ``source``'s manifest equal ``settings[method]``."""
    manifest = read_manifest(source)
    recorded = (manifest or {}).get("methods", {})
    return {
        name
        for name, now in settings.items()
        if name in recorded and not differences(recorded[name].get("settings", {}), as_recorded(now))
    }


def _reusable_lines(
    source: Path, methods: set[str], prompts: dict[str, tuple[str, Any]], done: set[tuple[str, str, int]]
) -> list[bytes]:
    lines, seen = [], set(done)
    for path in sorted(source.glob("predictions-rank*.jsonl")):
        for raw, rec in complete_lines(path, raw=True):  # a damaged middle line is one error naming it
            key = (str(rec["id"]), rec["method"], int(rec["sample"]))
            now = prompts.get(key[0])
            if key[1] in methods and key not in seen and now == (rec.get("prompt"), rec.get("reference", [])):
                lines.append(raw)
                seen.add(key)
    return lines


def reuse_lines(
    source: str | os.PathLike,
    output_dir: Path,
    settings: dict[str, dict],
    prompts: dict[str, tuple[str, Any]] | None,
    done: set[tuple[str, str, int]],
    hint: str,
) -> Counter:
    """Append to ``output_dir/predictions-rank0.jsonl`` the lines of ``source`` that this config would write
    (module docstring) and whose key is not in ``done``; return the number copied per method. ``hint``: what a
    refusal to write through a link suggests instead."""
    source = Path(source)
    if prompts is None or not source.is_dir() or source.resolve() == output_dir.resolve():
        return Counter()
    methods = reusable_methods(source, settings)
    lines = _reusable_lines(source, methods, prompts, done) if methods else []
    copied = Counter(json.loads(raw)["method"] for raw in lines)
    if lines:
        with append_file(output_dir / "predictions-rank0.jsonl", hint) as fh:
            fh.write(b"".join(lines))
            os.fsync(fh.fileno())
    again = sorted(m for m in settings if m not in methods)
    if copied:
        log.info(
            "reused from %s (same settings): %s; decoded here: %s",
            source,
            ", ".join(f"{m!r} ({n} lines)" for m, n in sorted(copied.items())),
            ", ".join(map(repr, again)) or "nothing new",
        )
    return copied
