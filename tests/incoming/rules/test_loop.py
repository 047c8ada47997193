"""The loop rule: automatic mail is never answered and floods are dropped."""

from __future__ import annotations

import pytest

from mailroom.business.crm.models import Lead
from mailroom.incoming.models import InboundMail
from mailroom.outgoing.models import OutgoingMail
from tests.incoming.conftest import _sent_from, email_fixture, message

pytestmark = pytest.mark.django_db

D = InboundMail.Decision


def test_out_of_office_to_an_alias_creates_nothing_and_gets_no_reply(deliver):
    mail = deliver(email_fixture("auto_reply_out_of_office.eml"))
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
