"""The router applies a batch in a few transactions, not one per message (runner._route_chunk):
a failing message rolls its transaction back and its messages are routed again one by one,
so it undoes only itself; a transaction that cannot commit is routed again message by
message too, nothing twice.

These tests commit for real (transaction=True): what is counted and rolled back is the
database's own transaction, not the test's."""

from __future__ import annotations

import logging

import pytest
from django.db import OperationalError, connection

from mailroom.business.crm.models import Lead
from mailroom.contacts.models import Partner
from mailroom.incoming.models import InboundMail
from mailroom.incoming.router import route_pending, runner
from mailroom.incoming.router.rules import post
from mailroom.incoming.services import accept
from tests.incoming.conftest import message

pytestmark = pytest.mark.django_db(transaction=True)

State, D = InboundMail.State, InboundMail.Decision


def _accept(acme, count: int, *, sender=lambda n: f"Person {n} <p{n}@prospect.example>"):
    return [accept(message(sender=sender(n), subject=f"m{n}").encode(), company=acme,
                   source="api", envelope_to=["sales@acme.test"]) for n in range(count)]


def _count_commits(monkeypatch, fail_at: int | None = None) -> list[int]:
    """Count the connection's commits (the claim's is the first); `fail_at`: that commit
    raises as a full disk or a lost connection would, once."""
    calls, real = [], connection.commit

    def commit():
        calls.append(1)
        if len(calls) == fail_at:
            connection.rollback()
            raise OperationalError("disk I/O error (injected by the test)")
        return real()

    monkeypatch.setattr(connection, "commit", commit)
    return calls


def test_a_batch_commits_once_per_chunk_not_once_per_message(acme, domain, monkeypatch):
    _accept(acme, 6)
    commits = _count_commits(monkeypatch)
    assert route_pending("t") == 6
    assert len(commits) == 2  # the claim, then the six messages together (one per message before)
    assert Lead.objects.count() == 6
    assert set(InboundMail.objects.values_list("state", "decision")) == {(State.DONE, D.CREATED)}


def test_the_messages_of_a_chunk_have_no_savepoint_each(acme, domain):
    """Two round trips per message on PostgreSQL: a failure rolls the chunk back instead."""
    from django.test.utils import CaptureQueriesContext

    _accept(acme, 4)
    with CaptureQueriesContext(connection) as queries:
        assert route_pending("t") == 4
    assert not [q["sql"] for q in queries if "SAVEPOINT" in q["sql"].upper()]


def test_a_message_that_fails_in_a_chunk_undoes_only_itself(acme, domain, monkeypatch):
    real_create = post._create

    def create(ctx, *args, **kwargs):
        if ctx.head.subject == "m1":
            raise RuntimeError("the record type refused it")
        return real_create(ctx, *args, **kwargs)

    monkeypatch.setattr(post, "_create", create)
    first, failing, last = _accept(acme, 3)
    assert route_pending("t") == 3
    states = dict(InboundMail.objects.values_list("pk", "state"))
    assert states == {first.pk: State.DONE, failing.pk: State.QUARANTINED, last.pk: State.DONE}
    assert "the record type refused it" in InboundMail.objects.get(pk=failing.pk).error
    assert sorted(Lead.objects.values_list("name", flat=True)) == ["m0", "m2"]
    # the contact the failing message had made was rolled back with it, and only it
    assert sorted(Partner.objects.values_list("email", flat=True)) == [
        "p0@prospect.example", "p2@prospect.example"]


def test_a_chunk_that_cannot_commit_is_routed_again_one_by_one(acme, domain, monkeypatch,
                                                               caplog):
    """Four messages from one new sender, two per transaction: the first transaction's
    commit fails. Its two messages are routed again alone; the batch's facts (which had
    counted the contact that transaction made) are forgotten, so the next two find the
    contact made again instead of making a second one."""
    monkeypatch.setattr(runner, "CHUNK", 2)
    _accept(acme, 4, sender=lambda n: "Ada <ada@newcomer.example>")
    _count_commits(monkeypatch, fail_at=2)  # the claim commits first
    with caplog.at_level(logging.WARNING, logger="mailroom.incoming.router"):
        assert route_pending("t") == 4
    rolled_back = [r for r in caplog.records if "rolled back" in r.getMessage()]
    assert len(rolled_back) == 1, [r.getMessage() for r in caplog.records]
    assert set(InboundMail.objects.values_list("state", "decision")) == {(State.DONE, D.CREATED)}
    assert Lead.objects.count() == 4
    # one contact, made once: the first lead's (an unverified sender is not attributed to
    # an existing contact, so the other three show the address only)
    ada = Partner.objects.get(email="ada@newcomer.example")
    assert list(Lead.objects.order_by("pk").values_list("partner", flat=True)) == [
        ada.pk, None, None, None]
    assert InboundMail.objects.filter(attempts=1).count() == 4  # each routed once, as it holds


def test_a_message_too_large_to_read_ahead_is_routed_in_its_place(acme, domain, monkeypatch):
    """A message over facts.KEEP_BYTES is routed alone, with facts of its own, in its place in
    the batch. A smaller one after it from the same new sender then finds the contact it made
    (the batch's facts, read before either, had none: before, it made a second one)."""
    from mailroom.incoming.router import facts

    monkeypatch.setattr(facts, "KEEP_BYTES", 1000)
    ada = "Ada <ada@newcomer.example>"
    large = accept(message(sender=ada, subject="large", body="x" * 2000).encode(),
                   company=acme, source="api", envelope_to=["sales@acme.test"])
    small = accept(message(sender=ada, subject="small").encode(), company=acme, source="api",
                   envelope_to=["sales@acme.test"])
    assert route_pending("t") == 2
    assert Partner.objects.filter(email="ada@newcomer.example").count() == 1
    assert list(Lead.objects.order_by("pk").values_list("name", flat=True)) == ["large",
                                                                                "small"]
    assert InboundMail.objects.get(pk=large.pk).processed_at <= \
        InboundMail.objects.get(pk=small.pk).processed_at


def test_a_chunk_commits_right_after_a_message_that_took_a_ticket_number(acme, domain,
                                                                         monkeypatch):
    """The number's lock on the company row is held until the commit: on PostgreSQL the
    chunk ends there, so another router's new ticket waits for one message, not 25."""
    from mailroom.business.helpdesk.models import Ticket

    for n in range(6):
        alias = "support@acme.test" if n == 2 else "sales@acme.test"
        accept(message(sender=f"p{n}@prospect.example", subject=f"m{n}", to=alias).encode(),
               company=acme, source="api", envelope_to=[alias])
    commits = _count_commits(monkeypatch)
    assert route_pending("t") == 6
    assert Ticket.objects.get().ref == "HD-00001" and Lead.objects.count() == 5
    if connection.features.has_select_for_update:  # PostgreSQL: m0–m2, then m3–m5
        assert len(commits) == 3
    else:  # SQLite: its one writer locks the file for any write transaction anyway
        assert len(commits) == 2


def test_a_failure_that_does_not_recur_when_routed_alone_leaves_the_message_routed(
        acme, domain, monkeypatch, caplog):
    """A message failing in a chunk rolls the chunk back; routed again alone, a passing
    failure (a full disk freed meanwhile) does not quarantine it, and nothing is doubled."""
    real, calls = post._post, []

    def fail_once(ctx, *args, **kwargs):
        calls.append(ctx.mail.pk)
        if len(calls) == 1:
            raise RuntimeError("the disk is full")
        return real(ctx, *args, **kwargs)

    monkeypatch.setattr(post, "_post", fail_once)
    _accept(acme, 2, sender=lambda n: "Linus <linus@kernel.example>")
    with caplog.at_level(logging.WARNING, logger="mailroom.incoming.router"):
        assert route_pending("t") == 2
    assert "the disk is full" in caplog.text and "routing them one by one" in caplog.text
    assert set(InboundMail.objects.values_list("state", "decision")) == {(State.DONE, D.CREATED)}
    assert Partner.objects.filter(email="linus@kernel.example").count() == 1
    assert Lead.objects.count() == 2
    assert list(InboundMail.objects.values_list("attempts", flat=True)) == [1, 1]
