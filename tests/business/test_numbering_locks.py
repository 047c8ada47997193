"""Taking a reference number locks the company row FOR NO KEY UPDATE (PostgreSQL): another
numbering of the company waits, but a row that only names the company (an inbound mail the
gateway stores while a router's transaction made a ticket) does not. FOR UPDATE held every
such insert's foreign-key check until the numbering transaction ended; with the router
applying a batch per transaction that halved what the gateway accepted."""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection, transaction

from mailroom.business.helpdesk.models import Ticket

pytestmark = pytest.mark.django_db(transaction=True)


def _other_connection():
    other = psycopg.connect(**connection.get_connection_params(), autocommit=True)
    other.execute("SET lock_timeout = '1s'")
    return other


@pytest.mark.skipif("connection.vendor != 'postgresql'",
                    reason="row locks: SQLite has one writer, whose lock covers the file; the "
                           "PostgreSQL pass runs this")
def test_a_numbering_holds_other_numberings_not_the_rows_that_name_the_company(acme):
    with transaction.atomic():
        ticket = Ticket(company=acme, name="Printer on fire")
        ticket.save()  # takes HD-00001 and holds the company row until the commit
        assert ticket.ref
        with _other_connection() as other:
            # what the foreign-key check of an insert naming the company takes
            other.execute("SELECT 1 FROM core_company WHERE id = %s FOR KEY SHARE", [acme.pk])
            with pytest.raises(psycopg.errors.LockNotAvailable):  # a second numbering waits
                other.execute("SELECT 1 FROM core_company WHERE id = %s FOR NO KEY UPDATE",
                              [acme.pk])
