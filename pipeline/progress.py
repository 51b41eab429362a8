"""Progress for long work: a live line on a terminal, plain log lines everywhere else.

Scheduled runs write to a journal or a log file, where carriage-return animations are noise,
so the same calls print one line per step (and every tenth of the way) when not on a terminal.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Reports stages, counts within a stage, and messages."""

    def __init__(self, stream: TextIO | None = None, *, quiet: bool = False):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.live = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._label = ""
        self._total = 0
        self._done = 0
        self._step = 1
        self._started = time.monotonic()

    def _write(self, text: str) -> None:
        if not self.quiet:
            self.stream.write(text)
            self.stream.flush()

    def log(self, message: str) -> None:
        """A message on its own line (clears a live progress line first)."""
        prefix = "\r\033[K" if self.live else ""
        self._write(f"{prefix}{message}\n")

    def stage(self, label: str, total: int = 0) -> None:
        """Start counting ``total`` items of a named piece of work."""
        self._label, self._total, self._done = label, total, 0
        self._step = max(1, total // 10)
        self._started = time.monotonic()
        if not self.live:
            self._write(f"{label}: {total} to do\n" if total else f"{label}\n")

    def advance(self, count: int = 1) -> None:
        """Mark ``count`` more items done."""
        before = self._done
        self._done += count
        if self.live:
            total = f"/{self._total}" if self._total else ""
            self._write(f"\r\033[K{self._label}: {self._done}{total}")
        elif self._total and (self._done // self._step) > (before // self._step):
            self._write(f"{self._label}: {self._done}/{self._total}\n")

    def done(self) -> None:
        """Close the stage with its duration."""
        seconds = time.monotonic() - self._started
        prefix = "\r\033[K" if self.live else ""
        self._write(f"{prefix}{self._label}: {self._done} done in {seconds:.1f} s\n")
