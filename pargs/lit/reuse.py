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

from pargs.errors import ConfigError
from pargs.lit.manifest import as_recorded, differences, read_manifest

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
        with open(path, "rb") as fh:
            for number, raw in enumerate(fh, start=1):
                if not raw.endswith(b"\n"):
                    break  # a torn last line: the source's own run repairs it
                try:
                    rec = json.loads(raw)
                except ValueError:
                    raise ConfigError(
                        f"{path}, line {number}: not a JSON prediction line; the lines to reuse cannot be read: "
                        "repair that file, or decode everything here (--reuse_from none)"
                    ) from None
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
) -> Counter:
    """Append to ``output_dir/predictions-rank0.jsonl`` the lines of ``source`` that this config would write
    (module docstring) and whose key is not in ``done``; return the number copied per method."""
    source = Path(source)
    if prompts is None or not source.is_dir() or source.resolve() == output_dir.resolve():
        return Counter()
    methods = reusable_methods(source, settings)
    lines = _reusable_lines(source, methods, prompts, done) if methods else []
    copied = Counter(json.loads(raw)["method"] for raw in lines)
    if lines:
        with open(output_dir / "predictions-rank0.jsonl", "ab") as fh:
            fh.writelines(lines)
            fh.flush()
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
