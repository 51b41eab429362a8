"""The lock that keeps two batches (or a batch and a reprocess) off one database at a time.

It lives apart from :mod:`pipeline.batch` so that commands which only need the lock do not
import the crawler and the NLP libraries to take it.
"""

from __future__ import annotations

import fcntl
import os
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
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise BatchLockedError(
                f"another batch is already running on {db_path} (pid {holder}); "
                "wait for it to finish or stop it first"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
