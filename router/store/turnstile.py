"""Acks first across processes that share one SQLite file.

SQLite's write lock has no queue: when a worker process's transaction ends, whichever
process asks next gets it, and a worker with more writes queued usually asks first, so
a webhook could wait behind a run of worker transactions. An urgent write (ingest: a
webhook waits for it) therefore *holds* the turnstile, an exclusive ``flock`` on
``<database>-turnstile``, from before it asks for the write lock until it has
committed; every other write *passes through* it (a shared lock, dropped at once)
before it asks. While an urgent write waits, no other process starts a transaction: it
waits for the one in progress at most. Within a process the store's write gate already
orders writers; a lock belongs to its process, so one that dies holds nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

_RETRY_SECONDS = 0.0005
_PATIENCE_SECONDS = 5.0  # then go on without it: SQLite's own lock still keeps writes apart


class Turnstile:
    def __init__(self, path: Path, patience: float = _PATIENCE_SECONDS) -> None:
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        self._patience = patience

    @contextlib.contextmanager
    def entered(self, urgent: bool) -> Iterator[None]:
        """Blocks (in a thread, never on the event loop) until this write may ask for the lock."""
        if not urgent:
            if self._lock(fcntl.LOCK_SH):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            yield
            return
        held = self._lock(fcntl.LOCK_EX)
        try:
            yield
        finally:
            if held:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _lock(self, kind: int) -> bool:
        deadline = time.monotonic() + self._patience
        while True:
            try:
                fcntl.flock(self._fd, kind | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(_RETRY_SECONDS)

    def close(self) -> None:
        os.close(self._fd)
