"""Commits a caller acknowledges on: they must survive a power loss, not only a crash."""

from __future__ import annotations

import contextlib

from django.db import transaction


@contextlib.contextmanager
def durable_commit():
    """The commit that lets a caller acknowledge (250, \\Seen, DELE, 202) survives a power
    loss. PostgreSQL's does (synchronous_commit); SQLite runs WAL with synchronous=NORMAL,
    durable against a process crash only, so this one commit, outside any transaction,
    fsyncs the WAL (FULL) and the connection goes back to NORMAL after it."""
    conn = transaction.get_connection()
    if conn.vendor != "sqlite" or conn.in_atomic_block:
        yield
        return
    with conn.cursor() as cursor:
        cursor.execute("PRAGMA synchronous=FULL")
    try:
        yield
    finally:
        with conn.cursor() as cursor:
            cursor.execute("PRAGMA synchronous=NORMAL")
