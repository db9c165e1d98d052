"""The files ``pargs predict`` writes inside a predictions directory are regular files, never followed links.

A prediction file, ``manifest.json`` or ``predict.lock`` that is a symbolic link (or a FIFO, a directory...)
would make resume write through it: cut the "torn" last line of a file outside the directory, or append
predictions to it. So rank 0 refuses such an entry with one line before it changes anything
(:func:`refuse_links`), and every open for writing passes ``O_NOFOLLOW`` (:func:`open_for_writing`), which also
covers a link made while the run holds the directory. The directory itself may be a link: a user may keep
runs on another disk and link them; only the entries inside must be regular files.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from pargs.errors import ConfigError


def _problem(path: Path) -> str | None:
    """What keeps ``path`` from being written as a regular file (None: it is one, or it does not exist)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        return f"is a symbolic link (to {os.readlink(path)})"
    if not stat.S_ISREG(st.st_mode):
        return "is not a regular file"
    return None


def refuse_links(paths: list[Path], hint: str) -> None:
    """Raise :class:`ConfigError` for the first of ``paths`` that exists and is not a regular file (a link
    included, even one that points to a regular file); ``hint`` says where else the user can write."""
    for path in paths:
        problem = _problem(path)
        if problem:
            raise ConfigError(
                f"{path} {problem}; pargs predict writes only regular files in its directory, never through a "
                f"link: replace it by a copy of what it points to (cp --remove-destination TARGET {path}), or {hint}"
            )


def open_for_writing(path: Path, flags: int, hint: str, mode: int = 0o644) -> int:
    """``os.open(path, flags | O_NOFOLLOW)``; a link there is the one line of :func:`refuse_links`."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), mode)
    except OSError as err:
        if err.errno == errno.ELOOP:
            refuse_links([path], hint)
        raise


def append_file(path: Path, hint: str):
    """``path`` opened to append bytes, unbuffered (a failed write leaves nothing buffered to retry at close),
    never through a link."""
    return open(path, "ab", buffering=0, opener=lambda name, flags: open_for_writing(Path(name), flags, hint))
