"""Locks other workers queue behind, noted for the code that owns the transaction.

A transaction that takes a lock every worker needs (numbering's lock on the company row,
business.numbering) holds it until it commits. The router applies up to 25 messages in one
transaction: a number taken for the first message would make the other routers' new tickets
wait for the other 24. `note(using)` says such a lock was taken on that connection;
`count(using)` is how many so far, so a caller that batches commits right after the
message that took one (incoming.router.runner). `hold(name)` is a lock of that kind for
what has no row to lock yet (a contact about to be made).
"""

from __future__ import annotations

import hashlib

from django.db import DEFAULT_DB_ALIAS, connections


def note(using: str = DEFAULT_DB_ALIAS) -> None:
    connection = connections[using]
    if not connection.features.has_select_for_update:
        return  # SQLite: every write transaction holds the one lock; no row lock to note
    connection.mailroom_hot_locks = count(using) + 1


def count(using: str = DEFAULT_DB_ALIAS) -> int:
    return getattr(connections[using], "mailroom_hot_locks", 0)


def hold(name: str, using: str = DEFAULT_DB_ALIAS) -> None:
    """Hold the lock called `name` until the transaction ends: two routers making the same
    new contact at once take turns, the second then finds the first one's (PostgreSQL's
    advisory locks; on SQLite the one writer already serializes every write transaction)."""
    connection = connections[using]
    if not connection.features.has_select_for_update:
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [lock_key(name)])


def lock_key(name: str) -> int:
    """The advisory lock's 64-bit key for `name`."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big",
                          signed=True)
