"""Commits a caller acknowledges on: they must survive a power loss, not only a crash.

PostgreSQL's commits do (synchronous_commit). SQLite runs WAL with synchronous=NORMAL by
default, durable against a process crash only, which suits the workers' many small commits
(what a power loss takes back there is done again: a message routed again, a mail found
uncertain). Two things make SQLite commits durable where someone is told "done":

- `durable_commit()` around one commit of a worker or the gateway (accepted mail, a queued
  outgoing mail);
- `acknowledge_every_commit()` in a process that answers people (`mailroom web`, the WSGI
  module): every commit it makes, so a campaign scheduled, a letter queued or a record saved
  in the UI or the API is not undone by a power loss after the page said so.
"""

from __future__ import annotations

import contextlib

from django.db import connections, transaction
from django.db.backends.signals import connection_created

_level = "NORMAL"  # this process's synchronous level on SQLite


@contextlib.contextmanager
def durable_commit():
    """The commit that lets a caller acknowledge (250, \\Seen, DELE, 202) survives a power
    loss: on SQLite this one commit, outside any transaction, fsyncs the WAL (FULL) and the
    connection goes back to the process's level after it."""
    conn = transaction.get_connection()
    if conn.vendor != "sqlite" or conn.in_atomic_block or _level == "FULL":
        yield
        return
    with conn.cursor() as cursor:
        cursor.execute("PRAGMA synchronous=FULL")
    try:
        yield
    finally:
        with conn.cursor() as cursor:
            cursor.execute(f"PRAGMA synchronous={_level}")


def acknowledge_every_commit() -> None:
    """Every SQLite commit of this process survives a power loss: connections open now and
    every one opened later run synchronous=FULL (one WAL fsync per commit; a person's
    clicks, not a worker's thousands)."""
    global _level
    _level = "FULL"
    connection_created.connect(_apply, dispatch_uid="mailroom.durability.full")
    for conn in connections.all(initialized_only=True):
        if conn.vendor == "sqlite" and conn.connection is not None:
            _apply(conn.vendor, conn)


def _apply(sender, connection, **kwargs) -> None:
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA synchronous={_level}")
