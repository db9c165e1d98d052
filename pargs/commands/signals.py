"""SIGTERM and SIGINT stop a command at its next safe point, with exit status 143 or 130 and one line saying
what was saved.

``timeout``, ``scancel`` and a docker or Kubernetes stop send SIGTERM; Ctrl-C sends SIGINT. Without this,
Lightning turns SIGTERM into a ``SystemExit`` without a code (exit status 0: a ``pargs fit ... && pargs
predict ...`` chain carried on with the previous model), ``predict`` ignored it, and SIGINT raised
``KeyboardInterrupt`` wherever the process happened to be.

:func:`handled` (``pargs.cli.main``, around the commands that have safe points) makes both signals only
*request* a stop: the handler records the signal, and the command stops where stopping loses nothing.
Inside a Lightning run the safe points are those of :class:`pargs.lit.safe_stop.SafeStop` (after a
training step, with a resumable checkpoint; before the next predict batch); between the steps of the
quickstart and the study they are :func:`check` and :func:`unit`. Lightning installs its own SIGTERM
handler for the length of a run and calls this one from it; a SIGINT is handed to that handler too, so
Lightning stops the run (and the other processes of a multi-process run) exactly as for a SIGTERM.

A second signal while stopping stops at once (the default action of that signal): an interrupted
``predict`` still resumes, a ``fit`` resumes from its last saved checkpoint. :func:`stopped` prints the
line ``pargs.cli.main`` ends with; the code that stopped says what it kept with :func:`say_saved` (the
last one to speak, the outermost command, wins).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from contextlib import contextmanager
from types import FrameType

from pargs.errors import Stopped

#: the signals that request a stop
SIGNALS = (signal.SIGTERM, signal.SIGINT)


class _State:
    signum: int | None = None  # the first signal received
    saved: str | None = None  # what the stopped command kept (say_saved)
    forwarding = False  # a SIGINT is being handed to Lightning's SIGTERM handler, which calls ours back


_state = _State()


@contextmanager
def handled(active: bool = True):
    """For the length of the block, SIGTERM and SIGINT request a stop (``active``; otherwise nothing changes);
    the previous handlers come back after it. Only the main thread can handle signals: elsewhere nothing
    changes either. A signal the process was started ignoring stays ignored (a shell starts a background
    job with SIGINT ignored, so a Ctrl-C meant for the foreground does not reach it)."""
    if not active or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in SIGNALS}
    _state.signum, _state.saved = None, None
    for signum, handler in previous.items():
        if handler is not signal.SIG_IGN:
            signal.signal(signum, _on_signal)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def requested() -> int | None:
    """The signal that requested a stop, or None."""
    return _state.signum


def say_saved(note: str) -> None:
    """Record what the stopping command kept, for :func:`stopped` (e.g. ``after step 12; resumable
    checkpoint ...; resume with --ckpt_path last``)."""
    _state.saved = note


def check(note: str) -> None:
    """A safe point: raise :class:`Stopped` (saying ``note``) if a stop was requested."""
    if _state.signum is not None:
        say_saved(note)
        raise Stopped(_state.signum)


@contextmanager
def unit(before: str, inside: str):
    """One unit of work of a command (a step of the quickstart or the study): a stop requested before it
    begins stops here, saying ``before``; a stop inside it says ``inside`` (the unit knows better than the
    code inside it what its caller must do next)."""
    check(before)
    try:
        yield
    except SystemExit:
        if _state.signum is not None:
            say_saved(inside)
        raise


def stopped(prog: str, exc: BaseException | None = None) -> int | None:
    """If a stop was requested (``exc``: the ``SystemExit`` a safe point raised), print the one line a stopped
    command ends with and return its exit status, 128 + the signal's number; otherwise None. ``exc`` None: the
    command finished before it reached a safe point after the signal. A :class:`Stopped` raised on another
    process's request (rank 0 of a multi-process run decides) counts as that request; only the first process
    of such a run prints the line."""
    signum = _state.signum if _state.signum is not None else getattr(exc, "signum", None)
    if signum is None:
        return None
    name = signal.Signals(signum).name
    if exc is None:
        line = f"{prog}: {name} received after the command had finished: its outputs are complete"
    else:
        line = f"{prog}: stopped by {name} {_state.saved or 'before it saved anything'}"
    if not _child():
        print(line, file=sys.stderr, flush=True)
    return 128 + signum


def _child() -> bool:
    """Whether this is a process that the first process of a multi-process run started (Lightning sets
    ``LOCAL_RANK`` for them): it may get the same signal twice, directly and from the first process."""
    return os.environ.get("LOCAL_RANK", "0") != "0"


def _say(text: str) -> None:
    # os.write, not print: a handler that prints while the main thread is writing to stderr would fail
    # with "reentrant call"
    os.write(2, (text + "\n").encode())


def _on_signal(signum: int, frame: FrameType | None) -> None:
    if _state.forwarding:  # our own SIGINT, handed to Lightning's handler, comes back here: already recorded
        return
    name = signal.Signals(signum).name
    if _state.signum is not None:
        if _child():  # rank 0 decides; its copy of a signal sent to the whole process group is no second signal
            return
        _say(f"pargs: second {name}: stopping now, without saving")
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    _state.signum = signum
    if not _child():
        _say(f"pargs: {name} received: stopping at the next safe point (send it again to stop at once)")
    current = signal.getsignal(signal.SIGTERM)
    if signum == signal.SIGINT and callable(current) and current is not _on_signal:
        _state.forwarding = True  # Lightning's handler, installed for a run: it stops the run and its processes
        try:
            current(signum, frame)
        finally:
            _state.forwarding = False
