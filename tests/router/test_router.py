"""The router end to end on stored messages: aliases, threading, duplicates, loops, refusals,
the quarantine and the dry run. Bounces and sender security have their own files."""

from __future__ import annotations

import pytest

from mailroom.apps.crm.models import Lead
from mailroom.apps.helpdesk.models import Ticket
from mailroom.chatter.models import Attachment, Follower, Message
from mailroom.contacts.models import Partner
from mailroom.incoming.models import InboundMail
from mailroom.outgoing.models import OutgoingMail
from tests.router.conftest import message

pytestmark = pytest.mark.django_db

D = InboundMail.Decision


def test_mail_to_an_alias_creates_a_record_with_the_sender_as_contact_and_follower(deliver):
    mail = deliver(message())
    assert (mail.state, mail.decision, mail.rule) == ("done", D.CREATED, "post")
    lead = Lead.objects.get()
    assert lead.name == "Need 40 licences"
    assert lead.email_from == "grace@navy.example"
    assert lead.partner.name == "Grace Hopper"
    assert mail.record == lead
    posted = Message.objects.get(pk=mail.chatter_message_id)
    assert (posted.message_type, posted.direction) == ("email", "in")
    assert "we would like a quote" in posted.body_html
    assert Follower.objects.filter(object_id=lead.pk, partner=lead.partner).exists()
    rules = [step["rule"] for step in mail.trace]
    assert rules == ["duplicate", "bounce", "loop", "thread", "alias", "fallback", "security",
                     "post"]


def test_alias_defaults_are_applied_and_support_creates_tickets(deliver, domain):
    from mailroom.routing.models import Alias
    from mailroom.routing.services import clear_cache

    Alias.objects.filter(domain=domain, local_part="support").update(
        defaults={"priority": "2"})
    clear_cache()
    deliver(message(to="support@acme.test", subject="Printer on fire"),
            to=["support@acme.test"])
    ticket = Ticket.objects.get()
    assert (ticket.name, ticket.priority, ticket.email) == (
        "Printer on fire", "2", "grace@navy.example")


def _sent_from(lead, customer, subject="Your quote"):
    from mailroom.outgoing.services import enqueue

    return enqueue(company=lead.company, email_from="sales@acme.test", to=[customer],
                   subject=subject, text="Here it is.", record=lead)


def test_reply_with_references_lands_on_the_record(deliver, lead, customer, domain):
    sent = _sent_from(lead, customer)
    reply = message(sender="Ada <ada@client.example>", subject="Re: Your quote",
                    headers=[f"In-Reply-To: {sent.message_id}",
                             f"References: {sent.message_id}"])
    mail = deliver(reply)
    assert (mail.decision, mail.record) == (D.POSTED, lead)
    assert Lead.objects.count() == 1


def test_reply_with_only_the_reply_token_lands_on_the_record(deliver, lead, customer, domain):
    sent = _sent_from(lead, customer)
    assert sent.reply_to.startswith("catchall+") and sent.reply_to.endswith("@acme.test")
    mail = deliver(message(sender="ada@client.example", to=sent.reply_to,
                           subject="something else entirely"), to=[sent.reply_to])
    assert (mail.decision, mail.record) == (D.POSTED, lead)


def test_reply_stripped_of_references_like_outlook_finds_the_record_by_subject(
        deliver, lead, customer, domain):
    _sent_from(lead, customer, subject="Quote 42 for Acme")
    mail = deliver(message(sender="ada@client.example", subject="RE: AW: Quote 42 for Acme"))
    assert (mail.decision, mail.record) == (D.POSTED, lead)
    thread = next(step for step in mail.trace if step["rule"] == "thread")
    assert "subject fallback" in thread["note"]


def test_subject_fallback_needs_the_same_sender(deliver, lead, customer, domain):
    _sent_from(lead, customer, subject="Quote 42 for Acme")
    mail = deliver(message(sender="mallory@evil.example", subject="Re: Quote 42 for Acme"))
    assert mail.decision == D.CREATED and mail.record != lead


def test_same_message_id_twice_is_a_duplicate(deliver):
    raw = message(message_id="<once@navy.example>")
    deliver(raw)
    second = deliver(raw)
    assert second.decision == D.DUPLICATE and "#" in second.reason
    assert Lead.objects.count() == 1


def test_mail_mailroom_sent_itself_is_not_posted_again(deliver, lead, customer, domain):
    from mailroom.core.tokens import MAILROOM_ID_HEADER, mailroom_id

    sent = _sent_from(lead, customer)
    looped = message(headers=[f"{MAILROOM_ID_HEADER}: {mailroom_id(sent.pk)}"])
    assert deliver(looped).decision == D.DUPLICATE


def test_out_of_office_to_an_alias_creates_nothing_and_gets_no_reply(deliver):
    mail = deliver(message(subject="Automatic reply: away", headers=[
        "Auto-Submitted: auto-replied"]))
    assert mail.decision == D.DROPPED and mail.is_automatic
    assert not Lead.objects.exists()
    assert not OutgoingMail.objects.exists()


def test_out_of_office_answering_a_thread_is_posted_without_triggering_mail(
        deliver, lead, customer, domain):
    sent = _sent_from(lead, customer)
    before = OutgoingMail.objects.count()
    mail = deliver(message(sender="ada@client.example", subject="Out of office",
                           headers=["Auto-Submitted: auto-replied",
                                    f"In-Reply-To: {sent.message_id}"]))
    assert (mail.decision, mail.record, mail.is_automatic) == (D.POSTED, lead, True)
    assert OutgoingMail.objects.count() == before


def test_flood_limit_drops_the_21st_message_unless_the_sender_is_allowed(
        deliver, settings, acme):
    from mailroom.routing.models import AllowedSender

    for number in range(20):
        assert deliver(message(subject=f"n{number}")).decision == D.CREATED
    dropped = deliver(message(subject="n20"))
    assert dropped.decision == D.DROPPED and "limit is 20" in dropped.reason
    AllowedSender.objects.create(company=acme, pattern="navy.example")
    from mailroom.routing.services import clear_cache

    clear_cache()  # the router reads allowed senders from a cache of a few seconds
    assert deliver(message(subject="n21")).decision == D.CREATED


def test_unknown_address_is_refused_with_exactly_one_reply(deliver, domain):
    domain.accept_unknown = True
    domain.save()
    from mailroom.routing.services import clear_cache

    clear_cache()
    mail = deliver(message(to="nobody@acme.test"), to=["nobody@acme.test"])
    assert mail.decision == D.REFUSED
    reply = OutgoingMail.objects.get()
    assert mail.bounce_reply == reply
    assert reply.is_automatic and reply.headers["Auto-Submitted"] == "auto-replied"
    assert [r.address for r in reply.recipients.all()] == ["grace@navy.example"]
    from mailroom.incoming.router import route

    route(mail)  # reprocessed: still one reply
    assert OutgoingMail.objects.count() == 1


def test_autoresponder_ping_pong_stops_at_the_flood_limit(deliver, domain):
    """A robot that ignores RFC 3834 answers every refusal; the flood limit ends it."""
    domain.accept_unknown = True
    domain.save()
    from mailroom.routing.services import clear_cache

    clear_cache()
    replies = 0
    for number in range(60):
        mail = deliver(message(sender="robot@bots.example", to="nobody@acme.test",
                               subject=f"Re: Not delivered {number}"),
                       to=["nobody@acme.test"])
        if mail.decision == D.DROPPED:
            break
        replies = OutgoingMail.objects.count()
    assert replies == 20
    assert OutgoingMail.objects.count() == 20


def test_nothing_is_ever_sent_to_automatic_mail(deliver, domain):
    domain.accept_unknown = True
    domain.save()
    from mailroom.routing.services import clear_cache

    clear_cache()
    for headers in (["Auto-Submitted: auto-replied"], ["Precedence: bulk"],
                    ["List-Id: <news.bots.example>"], ["X-Autoreply: yes"]):
        mail = deliver(message(to="nobody@acme.test", headers=headers), to=["nobody@acme.test"])
        assert mail.decision == D.REFUSED and mail.is_automatic
    assert deliver(message(sender="MAILER-DAEMON@bots.example", to="nobody@acme.test"),
                   to=["nobody@acme.test"]).is_automatic
    assert not OutgoingMail.objects.exists()


def test_a_message_that_fails_is_quarantined_and_can_be_reprocessed(deliver, settings, mia):
    from mailroom.incoming.router import route
    from mailroom.incoming.services import raw_bytes, reprocess

    settings.MAILROOM_INBOUND_MAX_PARTS = 5
    parts = "".join(f"--b\r\nContent-Type: text/plain\r\n\r\npart {n}\r\n" for n in range(20))
    raw = message(content_type='multipart/mixed; boundary="b"', body=parts + "--b--")
    mail = deliver(raw)
    assert mail.state == InboundMail.State.QUARANTINED
    assert "part" in mail.error.lower() and not Lead.objects.exists()
    assert raw_bytes(mail) == raw.encode()  # never lost
    settings.MAILROOM_INBOUND_MAX_PARTS = 1000
    assert reprocess([mail], actor=mia) == 1
    mail.refresh_from_db()
    route(mail)
    mail.refresh_from_db()
    assert mail.decision == D.CREATED and Lead.objects.count() == 1


def test_hostile_ten_thousand_part_message_is_quarantined_quickly(deliver):
    import time

    parts = "".join("--b\r\nContent-Type: text/plain\r\n\r\nx\r\n" for _ in range(10_000))
    started = time.monotonic()
    mail = deliver(message(content_type='multipart/mixed; boundary="b"',
                           body=parts + "--b--"))
    assert time.monotonic() - started < 5
    assert mail.state == InboundMail.State.QUARANTINED


def test_attachments_are_stored_inline_images_kept_and_dangerous_files_flagged(deliver):
    import base64

    png = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()
    body = "\r\n".join([
        "--m", "Content-Type: multipart/related; boundary=r", "",
        "--r", "Content-Type: text/html; charset=utf-8", "",
        '<p>See <img src="cid:logo@x"> and <img src="https://tracker.example/p.gif"></p>',
        "--r", "Content-Type: image/png", "Content-ID: <logo@x>",
        "Content-Transfer-Encoding: base64", "", png, "--r--",
        "--m", "Content-Type: application/octet-stream; name=invoice.exe",
        "Content-Disposition: attachment; filename=invoice.exe",
        "Content-Transfer-Encoding: base64", "", base64.b64encode(b"MZ...").decode(),
        "--m--", ""])
    mail = deliver(message(content_type='multipart/mixed; boundary="m"', body=body))
    posted = Message.objects.get(pk=mail.chatter_message_id)
    names = {a.name: a for a in Attachment.objects.filter(message=posted)}
    assert set(names) >= {"invoice.exe"}
    assert names["invoice.exe"].is_dangerous
    logo = next(a for a in names.values() if a.mimetype == "image/png")
    assert not logo.is_dangerous
    assert f"/attachments/{logo.pk}/download/" in posted.body_html
    assert "cid:" not in posted.body_html


def test_unverified_sender_is_not_attributed_to_an_existing_contact(deliver, customer):
    mail = deliver(message(sender="Ada <ada@client.example>"))
    posted = Message.objects.get(pk=mail.chatter_message_id)
    assert posted.author_partner is None
    assert "not verified" in posted.author_name
    assert Partner.objects.filter(email="ada@client.example").count() == 1


def test_dry_run_shows_the_deciding_rule_and_changes_nothing(acme, domain):
    from mailroom.incoming.router import dry_run

    ctx = dry_run(company=acme, sender="grace@navy.example", recipient="sales@acme.test")
    assert ctx.trace[-1]["rule"] == "post"
    assert "Would create a Lead" in ctx.trace[-1]["note"]
    refused = dry_run(company=acme, sender="grace@navy.example", recipient="x@acme.test")
    assert refused.trace[-1]["decision"] == D.REFUSED
    assert not Lead.objects.exists() and not InboundMail.objects.exists()
    assert not OutgoingMail.objects.exists()


def test_route_pending_routes_a_batch_and_reports_how_many(acme, domain):
    from mailroom.incoming.router import route_pending
    from mailroom.incoming.services import accept

    for number in range(3):
        accept(message(subject=f"m{number}").encode(), company=acme, source="api",
               envelope_to=["sales@acme.test"])
    assert route_pending("t") == 3
    assert route_pending("t") == 0
    assert Lead.objects.count() == 3


def test_a_claimed_batch_is_leased_for_a_minute_and_renewed_only_while_held(acme, domain):
    """A router that dies leaves its batch for about a minute (it was five); the heartbeat of
    a live one extends only the messages it still holds and has not routed yet."""
    from datetime import timedelta

    from django.utils import timezone

    from mailroom.incoming.router import claim, renew, route
    from mailroom.incoming.services import accept

    for number in range(3):
        accept(message(subject=f"m{number}").encode(), company=acme, source="api",
               envelope_to=["sales@acme.test"])
    first, second, third = claim("a")
    after = timezone.now()
    assert all(m.lease_owner == "a" and m.lease_expires_at <= after + timedelta(seconds=60)
               for m in (first, second, third))
    # the second one's lease ran out and another router took it; the third is routed
    InboundMail.objects.filter(pk=second.pk).update(lease_owner="b")
    route(third)

    assert renew("a", [first.pk, second.pk, third.pk]) == {first.pk}

    leases = dict(InboundMail.objects.values_list("pk", "lease_expires_at"))
    assert leases[first.pk] > first.lease_expires_at
    assert leases[second.pk] == second.lease_expires_at and leases[third.pk] is None
