""""Queued" survives a power loss: on SQLite (WAL with synchronous=NORMAL, durable against a
crash only) the commit that queues an outgoing mail — the API's 201, the composer's "sent" —
fsyncs the WAL (core.durability). PostgreSQL's commits are durable by themselves."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from mailroom.outgoing import services
from mailroom.templating.rendering import RenderedMail
from mailroom.templating.services import send_rendered

pytestmark = pytest.mark.django_db(transaction=True)


def _between_full_and_normal(queries, table: str) -> None:
    # executemany is logged as "3 times: INSERT …"
    sql = [q["sql"].split(" times: ", 1)[-1] for q in queries.captured_queries]
    insert = next(i for i, s in enumerate(sql)
                  if s.startswith("INSERT") and f'"{table}"' in s.split("(")[0])
    if connection.vendor != "sqlite":
        assert not any(s.startswith("PRAGMA") for s in sql)
        return
    full = max(i for i, s in enumerate(sql[:insert]) if s.startswith("PRAGMA synchronous"))
    assert sql[full] == "PRAGMA synchronous=FULL"
    commit = next(i for i, s in enumerate(sql) if i > insert and s == "COMMIT")
    assert sql[commit + 1] == "PRAGMA synchronous=NORMAL"  # back after the commit


def test_one_queued_mail_commits_durably(acme):
    with CaptureQueriesContext(connection) as queries:
        services.enqueue(company=acme, to=["ada@client.example"], subject="Invoice",
                         email_from="billing@acme.example", text="Attached.")
    _between_full_and_normal(queries, "outgoing_outgoingmail")


def test_many_queued_mails_commit_durably(acme):
    with CaptureQueriesContext(connection) as queries:
        services.enqueue_many(company=acme, mails=[
            {"to": [f"c{n}@client.example"], "subject": "News", "text": "Hello",
             "email_from": "news@acme.example"} for n in range(3)])
    _between_full_and_normal(queries, "outgoing_outgoingmail")


def test_a_mail_sent_from_a_record_commits_durably_with_its_chatter_entry(bob, lead):
    rendered = RenderedMail(template=None, lang="en_US", lang_missing=False,
                            subject="Your quote", body="<p>Here it is.</p>",
                            html="<p>Here it is.</p>", text="Here it is.",
                            to=["ada@client.example"])
    with CaptureQueriesContext(connection) as queries:
        send_rendered(lead, rendered, actor=bob)
    _between_full_and_normal(queries, "chatter_message")
    _between_full_and_normal(queries, "outgoing_outgoingmail")
