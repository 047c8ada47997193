"""A batch's facts read ahead (router/facts.py): the same decisions as asking per message,
in far fewer queries, and exact about what earlier messages of the same batch changed."""

from __future__ import annotations

import re

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from mailroom.business.crm.models import Lead
from mailroom.contacts.models import Partner
from mailroom.incoming.models import InboundMail
from tests.incoming.conftest import message

pytestmark = pytest.mark.django_db


def _accept(acme, raw: str, to="sales@acme.test") -> InboundMail:
    from mailroom.incoming.services import accept

    return accept(raw.encode(), company=acme, source="smtp", envelope_to=[to],
                  envelope_from="", remote_ip="127.0.0.1")


def _outcomes() -> list[tuple]:
    """Each message's decision, deciding rule and reason (ids of rows made in the run left
    out: PostgreSQL's sequences do not roll back)."""
    rows = InboundMail.objects.order_by("pk").values_list("decision", "rule", "reason")
    return [(decision, rule, re.sub(r"#\d+", "#…", reason)) for decision, rule, reason in rows]


def test_a_mixed_corpus_gets_the_same_decisions_read_ahead_as_asked_one_by_one(
        acme, domain, settings, monkeypatch):
    """The bench's corpus (new requests, replies with and without References, delivery
    reports, auto-replies), with a duplicate and a sender over a small flood limit mixed in:
    routed in batches with the facts read ahead, then again with nothing read ahead."""
    from bench.inbound_corpus import corpus

    from mailroom.incoming.router import facts, route_pending
    from mailroom.incoming.services import accept
    from mailroom.outgoing.services import enqueue
    from mailroom.routing.services import clear_cache

    settings.MAILROOM_FLOOD_LIMIT = 3
    sent = []
    for n in range(5):
        partner = Partner.objects.create(company=acme, name=f"Customer {n}",
                                         email=f"customer{n}@client.example")
        lead = Lead.objects.create(company=acme, name=f"Deal {n}", partner=partner)
        mail = enqueue(company=acme, email_from="sales@acme.test", to=[partner],
                       subject=f"Your quote {n}", text="Here.", record=lead)
        sent.append((mail.pk, mail.message_id, mail.recipients.first().pk))
    items = corpus(60, sent, "acme.test")
    items.insert(7, items[3])  # the same message twice, in one batch
    flood = message(sender="Loud <loud@spam.example>")
    items += [("loud@spam.example", ["sales@acme.test"],
               flood.replace("Message-ID: <", f"Message-ID: <{n}-").encode())
              for n in range(5)]

    def route_all(keep_bytes: int) -> tuple[list[tuple], int]:
        monkeypatch.setattr(facts, "KEEP_BYTES", keep_bytes)
        with transaction.atomic():
            for sender, recipients, raw in items:
                accept(raw, company=acme, source="smtp", envelope_from=sender,
                       envelope_to=recipients, remote_ip="127.0.0.1")
            with CaptureQueriesContext(connection) as queries:
                while route_pending("t"):
                    pass
            found = _outcomes()
            transaction.set_rollback(True)
        clear_cache()
        return found, len(queries)

    keep = facts.KEEP_BYTES
    asked, asked_queries = route_all(keep_bytes=0)
    ahead, ahead_queries = route_all(keep_bytes=keep)
    assert ahead == asked
    assert ahead_queries < asked_queries * 0.8, (ahead_queries, asked_queries)
    decisions = [row[0] for row in ahead]
    assert decisions.count("duplicate") == 1
    assert decisions[-5:] == ["created", "created", "created", "dropped", "dropped"]
    assert {"created", "posted", "bounce"} <= set(decisions)


def test_a_batch_of_replies_asks_the_database_once_for_what_they_answer(
        acme, domain, django_assert_max_num_queries):
    from mailroom.incoming.router import route_pending
    from mailroom.outgoing.services import enqueue

    customer = Partner.objects.create(company=acme, name="Ada", email="ada@client.example")
    lead = Lead.objects.create(company=acme, name="Deal", partner=customer)
    sent = enqueue(company=acme, email_from="sales@acme.test", to=[customer],
                   subject="Your quote", text="Here.", record=lead)
    for _ in range(20):
        _accept(acme, message(sender="Ada <ada@client.example>", subject="Re: Your quote",
                              headers=[f"In-Reply-To: {sent.message_id}"]))
    with django_assert_max_num_queries(20 * 8 + 15) as counted:
        assert route_pending("t") == 20
    assert Lead.objects.count() == 1
    assert set(InboundMail.objects.values_list("decision", "object_id")) == {
        ("posted", lead.pk)}
    # per message: its transaction, the message, its followers and its own row
    assert len(counted.captured_queries) < 20 * 8


def test_a_reply_to_a_message_routed_earlier_in_the_same_batch_lands_on_its_record(
        acme, domain):
    from mailroom.incoming.router import route_pending

    _accept(acme, message(message_id="<first@navy.example>"))
    _accept(acme, message(sender="Grace Hopper <grace@navy.example>", subject="Re: licences",
                          headers=["In-Reply-To: <first@navy.example>"]))
    assert route_pending("t") == 2
    first, reply = InboundMail.objects.order_by("pk")
    assert (first.decision, reply.decision) == ("created", "posted")
    assert reply.object_id == first.object_id


def test_a_new_sender_writing_twice_in_one_batch_becomes_one_contact(acme, domain):
    from mailroom.incoming.router import route_pending

    for subject in ("One", "Two"):
        _accept(acme, message(sender="Linus <linus@kernel.example>", subject=subject))
    assert route_pending("t") == 2
    assert Partner.objects.filter(email="linus@kernel.example").count() == 1
    assert InboundMail.objects.filter(decision="created").count() == 2


def test_a_contact_made_by_a_message_that_failed_is_not_used_by_the_next(
        acme, domain, monkeypatch):
    """The first message makes the sender's contact, then fails: its transaction is rolled
    back with the contact; the second message of the batch makes the contact again instead
    of pointing at one that no longer exists."""
    from mailroom.incoming.router.rules import post

    calls = []
    real = post._post

    def fail_one(ctx, *args, **kwargs):  # every time it is tried: alone again too
        calls.append(ctx.mail.pk)
        if ctx.head.subject == "One":
            raise RuntimeError("the disk is full")
        return real(ctx, *args, **kwargs)

    monkeypatch.setattr(post, "_post", fail_one)
    from mailroom.incoming.router import route_pending

    for subject in ("One", "Two"):
        _accept(acme, message(sender="Linus <linus@kernel.example>", subject=subject))
    assert route_pending("t") == 2
    first, second = InboundMail.objects.order_by("pk")
    assert first.state == "quarantined" and "the disk is full" in first.error
    assert second.decision == "created"
    assert Partner.objects.filter(email="linus@kernel.example").count() == 1


def test_a_copy_another_router_routed_meanwhile_is_a_duplicate_not_a_second_record(
        acme, domain):
    """Two copies of one message (the sender's server delivered it twice), each claimed by
    another router: router B read its batch's facts before router A committed the first
    copy. B's copy fails the one-routing-per-Message-ID constraint and is routed again,
    alone, as the duplicate it is: one lead, not two."""
    from mailroom.incoming.router import route, runner

    raw = message(sender="Grace <grace@navy.example>", subject="Two deliveries")
    first, second = _accept(acme, raw), _accept(acme, raw)
    contexts = runner._read_batch([second])  # router B: nothing seen yet
    facts = contexts[second.pk].facts
    assert facts is not None and not facts.may_be_duplicate(contexts[second.pk])
    route(first)  # router A routes and commits the first copy
    assert runner._route_chunk([second], contexts, facts) == 1  # router B goes on
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.decision, second.decision) == ("created", "duplicate")
    assert second.state == "done" and f"#{first.pk}" in second.reason
    assert Lead.objects.count() == 1


def test_a_copy_routed_alone_on_stale_facts_is_routed_again_as_the_duplicate(acme, domain):
    """route() itself (a message routed alone, e.g. too large to read ahead) meets the
    constraint, and routes the message once more, now seeing the other copy."""
    from mailroom.incoming.router import route, runner

    raw = message(sender="Grace <grace@navy.example>", subject="Two deliveries")
    first, second = _accept(acme, raw), _accept(acme, raw)
    stale = runner._read_batch([second])[second.pk]  # read before the first copy is routed
    route(first)
    route(second, ctx=stale)
    second.refresh_from_db()
    assert (second.state, second.decision) == ("done", "duplicate")
    assert Lead.objects.count() == 1


def test_the_same_message_id_may_be_routed_again_only_as_a_duplicate_or_a_refusal(acme):
    """The constraint itself: a second routed copy is refused by the database; duplicates,
    refusals, messages waiting or quarantined, and mail without a Message-ID are not held."""
    from django.db import IntegrityError

    from mailroom.incoming.router.runner import routed_twice

    def row(**fields):
        return InboundMail.objects.create(company=acme, source="api", raw_sha256="0" * 64,
                                          raw_size=1, **fields)

    row(message_id="<a@x>", state="done", decision="created")
    for fields in ({"state": "done", "decision": "duplicate"},
                   {"state": "done", "decision": "refused"}, {"state": "received"},
                   {"state": "quarantined"}):
        row(message_id="<a@x>", **fields)
    row(message_id="", state="done", decision="created")
    row(message_id="", state="done", decision="created")
    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        row(message_id="<a@x>", state="done", decision="posted")
    assert routed_twice(caught.value)


@pytest.mark.django_db(transaction=True)
def test_the_upgrade_marks_copies_routed_twice_before_it_as_duplicates(acme):
    """Copies routed twice before the constraint existed would stop it from being added:
    the migration marks the later ones duplicates first, saying so in their trace."""
    from django.core.management import call_command

    call_command("migrate", "incoming", "0001", verbosity=0)
    try:
        rows = [InboundMail.objects.create(
            company=acme, source="api", raw_sha256="0" * 64, raw_size=1, message_id="<a@x>",
            state="done", decision=decision, trace=[{"rule": "post", "note": "Posted."}])
            for decision in ("created", "posted", "duplicate")]
    finally:
        call_command("migrate", "incoming", verbosity=0)
    first, second, third = (InboundMail.objects.get(pk=row.pk) for row in rows)
    assert (first.decision, second.decision, third.decision) == (
        "created", "duplicate", "duplicate")
    assert second.trace[-1]["note"].startswith(f"Marked a duplicate of message #{first.pk} ")
    assert len(third.trace) == 1  # a duplicate already: left as it was
