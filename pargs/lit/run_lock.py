"""One ``pargs predict`` at a time per predictions directory: an exclusive ``flock`` on ``<dir>/predict.lock``.

Two runs appending to the same files would write every line twice. The run's global rank 0 takes the
lock before it reads or repairs anything and holds it to the end (the other ranks wait for its verdict,
:class:`pargs.lit.writer.JsonlPredictionWriter`), so a run on any number of processes is one holder. The
kernel drops a ``flock`` when its process dies (SIGKILL included): a lock file left behind blocks
nothing. The file holds the holder's pid, host and start time, for the message of a refused run. POSIX
only (``fcntl``); on NFS, Linux maps ``flock`` to byte-range locks, which the server arbitrates.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from pathlib import Path

from pargs.errors import ConfigError
from pargs.lit.regular_files import open_for_writing

LOCK_NAME = "predict.lock"


class DirectoryLock:
    """The exclusive lock of a predictions directory (:func:`acquire`, :meth:`release`)."""

    def __init__(self, folder: Path, fd: int) -> None:
        self.folder, self._fd = folder, fd

    def release(self) -> None:
        """Drop the lock (the file stays: removing it would race with a run taking it)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def acquire(folder: str | os.PathLike, hint: str) -> DirectoryLock:
    """Lock ``folder`` for this process or raise :class:`ConfigError` naming the holder; ``hint`` says what else
    the user can do. ``OSError`` (a read-only directory) is left to the caller."""
    folder = Path(folder)
    path = folder / LOCK_NAME
    fd = open_for_writing(path, os.O_RDWR | os.O_CREAT, hint)  # a link there is refused: its target is not ours
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 512, 0).decode("utf-8", "replace").strip() or "a process that has not said which"
        os.close(fd)
        raise ConfigError(
            f"predictions directory {folder} is in use by another pargs predict ({holder}; lock "
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
