"""core.contention.hold: an address held by one transaction makes another wait until it ends
(PostgreSQL; SQLite's one writer serializes write transactions already)."""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection, transaction

from mailroom.core import contention

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.skipif("connection.vendor != 'postgresql'",
                    reason="advisory locks: SQLite has one writer, whose lock covers the file; "
                           "the PostgreSQL pass runs this")
def test_a_held_name_makes_another_transaction_wait_until_the_commit():
    key = contention.lock_key("contact 1 ada@client.example")
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as other:
        with transaction.atomic():
            contention.hold("contact 1 ada@client.example")
            taken = other.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()[0]
            assert taken is False  # another router making the same contact waits
            other_name = contention.lock_key("contact 1 bea@client.example")
            assert other.execute("SELECT pg_try_advisory_lock(%s)", [other_name]).fetchone()[0]
        assert other.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()[0]


def test_nothing_is_held_where_the_one_writer_serializes(db):
    if connection.vendor == "sqlite":
        contention.hold("contact 1 ada@client.example")  # no statement, no error
        assert contention.count() == 0
