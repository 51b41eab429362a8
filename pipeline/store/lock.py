"""The lock that keeps two batches (or a batch and a reprocess) off one database at a time.

It lives apart from :mod:`pipeline.batch` so that commands which only need the lock do not
import the crawler and the NLP libraries to take it.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class BatchLockedError(RuntimeError):
    """Another batch holds the lock on this database."""


@contextmanager
def batch_lock(db_path: Path) -> Iterator[None]:
    """An exclusive, non-blocking lock next to the database; released even if the process dies.

    ``flock`` locks vanish with the process, so a batch killed with SIGKILL never leaves a stale
    lock behind.
    """
    lock_path = Path(f"{db_path}.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder_pid(lock_path)
            raise BatchLockedError(
                f"another batch is already running on {db_path} (pid {holder}); "
                "wait for it to finish or stop it first"
            ) from None
        os.ftruncate(handle.fileno(), 0)
        os.write(handle.fileno(), f"{os.getpid()}\n".encode())  # one write: a whole line or none
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _holder_pid(lock_path: Path, wait: float = 1.0) -> str:
    """The pid the holder wrote into the lock file, or ``"unknown"``.

    The holder writes its pid just after it takes the lock, so a batch refused in that instant
    finds the file empty; it waits a moment for the line rather than report no pid.
    """
    deadline = time.monotonic() + wait
    while True:
        text = lock_path.read_text(encoding="ascii", errors="replace")
        if text.endswith("\n") or time.monotonic() >= deadline:
            return text.strip() or "unknown"
        time.sleep(0.01)
