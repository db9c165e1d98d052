"""One run at a time per output directory: an exclusive ``flock`` on a lock file in it.

- ``pargs predict``: ``<predictions dir>/predict.lock`` (:data:`PREDICT`). Two runs appending to the same
  files would write every line twice. The run's global rank 0 takes the lock before it reads or repairs
  anything and holds it to the end (the other ranks wait for its verdict,
  :class:`pargs.lit.writer.JsonlPredictionWriter`), so a run on any number of processes is one holder.
- ``pargs study``: ``<out>/study.lock`` (:data:`STUDY`), taken before anything in ``--out`` is read or
  removed: a second study would remove the running one's step outputs (its predict locks included).

The kernel drops a ``flock`` when its process dies (SIGKILL included): a lock file left behind blocks
nothing. The file holds the holder's pid, host and start time, for the message of a refused run. POSIX
only (``fcntl``); on NFS, Linux maps ``flock`` to byte-range locks, which the server arbitrates.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from pargs.errors import ConfigError
from pargs.lit.regular_files import open_for_writing


@dataclass(frozen=True)
class LockKind:
    """Which lock: its file name, what the directory is and who holds such a lock (for the refusal)."""

    name: str
    directory: str
    holder: str


PREDICT = LockKind("predict.lock", "predictions directory", "pargs predict")
STUDY = LockKind("study.lock", "study directory", "pargs study")


class DirectoryLock:
    """The exclusive lock of a directory (:func:`acquire`, :meth:`release`; a ``with`` block releases it too)."""

    def __init__(self, folder: Path, fd: int) -> None:
        self.folder, self._fd = folder, fd

    def __enter__(self) -> DirectoryLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def release(self) -> None:
        """Drop the lock (the file stays: removing it would race with a run taking it)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def acquire(folder: str | os.PathLike, hint: str, kind: LockKind = PREDICT) -> DirectoryLock:
    """Lock ``folder`` for this process or raise :class:`ConfigError` naming the holder; ``hint`` says what else
    the user can do. ``OSError`` (a read-only directory) is left to the caller."""
    folder = Path(folder)
    path = folder / kind.name
    fd = open_for_writing(path, os.O_RDWR | os.O_CREAT, hint)  # a link there is refused: its target is not ours
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 512, 0).decode("utf-8", "replace").strip() or "a process that has not said which"
        os.close(fd)
        raise ConfigError(
            f"{kind.directory} {folder} is in use by another {kind.holder} ({holder}; lock "
            f"{path}): wait for it to finish, or {hint}"
        ) from None
    except BaseException:
        os.close(fd)
        raise
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    note = f"pid {os.getpid()} on host {socket.gethostname()}, since {started}\n".encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, note, 0)
    return DirectoryLock(folder, fd)
