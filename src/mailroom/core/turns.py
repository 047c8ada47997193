"""Workers that write to one SQLite file take turns, and the next one starts at once.

SQLite has one writer. A process that finds the file locked sleeps in SQLite's busy handler
and looks again after 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100 ms: a second router
waiting for the first one's 60 ms transaction started up to 25 ms after it ended, and two
routers routed about what one did (237/s; 260/s with turns, 2,000 bench messages, this
2-core machine, alternating runs). `writer_turn()` around a worker's write transaction
takes an exclusive lock on a file beside the database first (flock): the kernel wakes the
next waiter the moment the holder lets go. Readers and other writers (the UI, the gateway's
spool) are not involved; they still meet SQLite's own lock, as before.

Nested turns are one turn, and a turn asked for inside a transaction is none (the turn is
always taken before SQLite's lock, never after). On PostgreSQL, and for an in-memory SQLite
database (the tests'), it does nothing: rows are locked one by one there.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading

from django.db import DEFAULT_DB_ALIAS, connections

_held = threading.local()
_files: dict[tuple[str, int], tuple[threading.Lock, int]] = {}
_files_lock = threading.Lock()


@contextlib.contextmanager
def writer_turn(using: str = DEFAULT_DB_ALIAS):
    path = _turn_file(using)
    depth = getattr(_held, "depth", 0)
    # inside a transaction already (the demo seeding routes its sample mail in one), this
    # writer may hold SQLite's lock: waiting for the turn then would invert the order
    if path is None or depth or connections[using].in_atomic_block:
        _held.depth = depth + 1
        try:
            yield
        finally:
            _held.depth = depth
        return
    threads, descriptor = _lock_for(path)
    with threads:  # flock belongs to the open file: this process's threads queue here
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        _held.depth = 1
        try:
            yield
        finally:
            _held.depth = 0
            fcntl.flock(descriptor, fcntl.LOCK_UN)


def _turn_file(using: str) -> str | None:
    connection = connections[using]
    if connection.vendor != "sqlite" or connection.is_in_memory_db():
        return None
    return f"{connection.settings_dict['NAME']}-turns"


def _lock_for(path: str) -> tuple[threading.Lock, int]:
    """This process's lock and descriptor for `path` (a forked child opens its own: an
    inherited descriptor would share its parent's lock)."""
    key = (path, os.getpid())
    with _files_lock:
        if key not in _files:
            _files[key] = (threading.Lock(),
                           os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
        return _files[key]
