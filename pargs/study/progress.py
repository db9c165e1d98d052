"""Progress of a study per seed and step: a tqdm bar on a terminal, plain log lines otherwise."""

from __future__ import annotations

import logging
import sys

log = logging.getLogger(__name__)


class Progress:
    """Counts finished steps out of ``total``; ``stream`` decides the display (a TTY gets a bar)."""

    def __init__(self, total: int, stream=None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.total, self.count = total, 0
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.bar = None
        if self.tty:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, unit="step", file=self.stream, desc="study")

    def start(self, seed: int, step: str) -> None:
        if self.bar is not None:
            self.bar.set_description(f"seed {seed}: {step}")
        else:
            log.info("study [%d/%d] seed %d: %s running", self.count + 1, self.total, seed, step)

    def finish(self, seed: int, step: str, status: str, seconds: float) -> None:
        self.count += 1
        if self.bar is not None:
            self.bar.set_postfix_str(f"{step} {status} ({seconds:.1f} s)")
            self.bar.update(1)
        else:
            log.info("study [%d/%d] seed %d: %s %s (%.1f s)", self.count, self.total, seed, step, status, seconds)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
