"""The record of what made each method's prediction lines: ``<output_dir>/manifest.json``.

::

    {"format": 1,
     "methods": {"pargs": {"settings": {"beta": 1.5, "k": 10, ..., "scorers.partial.model.files": "sha256:..."}},
                 ...},
     "file_digests": {"/abs/path/model.safetensors": {"size": ..., "mtime_ns": ..., "sha256": "..."}, ...},
     "prompts": {"file": "data/prompts_test.jsonl", "ids": ["p0", "p1", ...]}}

``settings`` are :mod:`pargs.lit.fingerprint`'s; ``file_digests`` is the cache of
:class:`pargs.models.identity.FileDigests` (a model file is hashed again only when its size or time
changed); ``prompts`` the prompt ids of the last run (lines of other ids are set aside,
:mod:`pargs.lit.resume_check`). One manifest per predictions directory keeps the lines small and lets a refusal name the
fields that changed. It is written atomically (a temporary file renamed over it) before the first line
of a method is written; a method recorded but without a line yet (a run that stopped before decoding)
is not bound by its record.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pargs.atomic_files import replace_file
from pargs.errors import ConfigError
from pargs.lit.fingerprint import LOCATION_SUFFIXES

MANIFEST = "manifest.json"
#: 2: methods have ``noise_key`` (format 1 seeded each row from the method's name, which is what 2 records)
FORMAT = 2


def read_manifest(output_dir: str | os.PathLike) -> dict | None:
    """The directory's manifest, or None when it has none."""
    path = Path(output_dir) / MANIFEST
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(manifest, dict) or not isinstance(manifest.get("methods"), dict):
            raise ValueError("no `methods` object")
    except (ValueError, UnicodeDecodeError) as err:
        raise ConfigError(
            f"{path} is not a pargs predictions manifest ({err}); delete it, then run again with "
            "--on_change restart (decode the lines again) or adopt (keep them)"
        ) from None
    if manifest.get("format", 1) < 2:  # rows were seeded from the method's name: that was their noise key
        for entry in manifest["methods"].values():
            settings = entry.get("settings", {}) if isinstance(entry, dict) else {}
            if "name" in settings:
                settings.setdefault("noise_key", settings["name"])
    return manifest


def write_manifest(output_dir: str | os.PathLike, manifest: dict) -> None:
    """Replace the manifest atomically (a reader sees the old one or the new one, never half of one)."""
    path = Path(output_dir) / MANIFEST
    text = json.dumps(dict(manifest, format=FORMAT), indent=1, sort_keys=True, ensure_ascii=False, allow_nan=False)
    replace_file(path, [(text + "\n").encode("utf-8")])


def as_recorded(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings as the manifest stores them (JSON: tuples become lists), so they compare with a record."""
    return json.loads(json.dumps(settings, ensure_ascii=False))


def _contents_key(key: str) -> str:
    """The key of the content digest that goes with a location key (``x.path`` -> ``x.files``)."""
    if key.endswith(".path"):
        return key[: -len("path")] + "files"
    return key + "_files"  # x.tokenizer -> x.tokenizer_files


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(key, recorded value, current value)`` for each setting that differs. A location (``.path``) counts
    only when the content of either side is unknown; an unknown content digest (None) is not compared."""
    out = []
    for key in sorted(old.keys() | new.keys()):
        a, b = old.get(key, "(unset)"), new.get(key, "(unset)")
        if a == b:
            continue
        if key.endswith(LOCATION_SUFFIXES):
            contents = _contents_key(key)
            if old.get(contents) is not None and new.get(contents) is not None:
                continue
        elif (key.endswith("files")) and (a is None or b is None):
            continue
        out.append((key, a, b))
    return out


def short(value: Any) -> str:
    """A setting for a one-line message (digests cut to 12 hex digits)."""
    if isinstance(value, str) and value.startswith("sha256:"):
        return value[: len("sha256:") + 12]
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
