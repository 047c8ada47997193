"""Email and People KPIs over the DST week in Paris (see test_kpis_business)."""

from __future__ import annotations

from datetime import timedelta
from itertools import count

from mailroom.business.crm.models import Lead
from mailroom.chatter.models import Message
from mailroom.chatter.services import post_message, save_record
from mailroom.core.models import User
from mailroom.incoming.models import InboundMail
from mailroom.outgoing.models import OutgoingMail, OutgoingRecipient, SendAttempt
from tests.digests.test_kpis_business import AFTER, BEFORE, FIRST, LAST, at, row

_ids = count(1)
State = OutgoingMail.State


def mail(company, state, **fields):
    return OutgoingMail.objects.create(company=company, state=state,
                                       message_id=f"<{next(_ids)}@kpi.test>",
                                       email_from="news@acme.example", **fields)


def test_mails_sent_count_mails_accepted_in_the_week(acme, globex):
    for moment in (BEFORE, FIRST, LAST, AFTER):
        sent = mail(acme, State.SENT, sent_at=moment)
        for address in ("a@x.example", "b@x.example"):  # one mail, however many recipients
            OutgoingRecipient.objects.create(mail=sent, address=address,
                                             status=OutgoingRecipient.Status.SENT)
    mail(acme, State.OUTGOING, created_at=FIRST)
    mail(globex, State.SENT, sent_at=FIRST)
    assert row(acme, "outgoing.mails_sent") == (2, 1)


def test_mails_failed_are_dated_by_their_last_attempt(acme):
    for moment in (BEFORE, FIRST, LAST, AFTER):
        failed = mail(acme, State.EXCEPTION, created_at=BEFORE - timedelta(days=30))
        SendAttempt.objects.create(mail=failed, started_at=moment - timedelta(days=20),
                                   outcome=SendAttempt.Outcome.DEFERRED)
        SendAttempt.objects.create(mail=failed, started_at=moment,
                                   outcome=SendAttempt.Outcome.FAILED)
    # refused before any attempt (every recipient blacklisted): dated by its creation
    mail(acme, State.EXCEPTION, created_at=LAST)
    # failed inside the week, retried and sent since: no longer a failure
    retried = mail(acme, State.SENT, sent_at=AFTER)
    SendAttempt.objects.create(mail=retried, started_at=FIRST,
                               outcome=SendAttempt.Outcome.FAILED)
    assert row(acme, "outgoing.mails_failed") == (3, 1)


def test_bounces_count_recipients_by_when_their_mail_was_sent(acme, globex):
    for moment in (BEFORE, FIRST, LAST, AFTER):
        sent = mail(acme, State.SENT, sent_at=moment)
        OutgoingRecipient.objects.create(mail=sent, address="gone@x.example", sent_at=moment,
                                         status=OutgoingRecipient.Status.BOUNCED)
        OutgoingRecipient.objects.create(mail=sent, address="fine@x.example", sent_at=moment,
                                         status=OutgoingRecipient.Status.SENT)
    other = mail(globex, State.SENT, sent_at=FIRST)
    OutgoingRecipient.objects.create(mail=other, address="gone@y.example", sent_at=FIRST,
                                     status=OutgoingRecipient.Status.BOUNCED)
    assert row(acme, "outgoing.recipients_bounced") == (2, 1)


def inbound(company, moment, state=InboundMail.State.DONE):
    return InboundMail.objects.create(company=company, source=InboundMail.Source.SMTP,
                                      raw_sha256="0" * 64, raw_size=10, received_at=moment,
                                      state=state)


def test_inbound_received_and_quarantined(acme, globex):
    for moment in (BEFORE, FIRST, LAST, AFTER):
        inbound(acme, moment)
        inbound(acme, moment, InboundMail.State.QUARANTINED)
    inbound(globex, FIRST, InboundMail.State.QUARANTINED)
    assert row(acme, "incoming.received") == (4, 2)
    assert row(acme, "incoming.quarantined") == (2, 1)


def test_active_users_were_seen_or_wrote_in_the_week(acme, globex, bob, alice, mia, tess,
                                                     dana, charlie):
    seen = {bob: FIRST, alice: BEFORE, tess: LAST, charlie: LAST, dana: AFTER}
    for user, moment in seen.items():
        User.objects.filter(pk=user.pk).update(last_seen_at=moment)
    # never seen by the middleware, but signed in inside the week
    User.objects.filter(pk=mia.pk).update(last_seen_at=None, last_login=LAST)
    User.objects.filter(pk=tess.pk).update(is_active=False)
    lead = save_record(Lead(company=acme, name="Deal"), actor=alice)
    with at(LAST):  # last seen after the week, but wrote inside it
        post_message(lead, actor=dana, body_text="Called them", notify=False)
    # bob, mia, dana this week; alice the week before (charlie is globex's, tess inactive)
    assert row(acme, "chatter.active_users") == (3, 1)


def test_messages_posted_count_what_users_wrote(acme, globex, bob, customer, charlie):
    lead = save_record(Lead(company=acme, name="Deal"), actor=bob)
    for moment in (BEFORE, FIRST, LAST, AFTER):
        with at(moment):
            post_message(lead, actor=bob, body_text="Update", notify=False)
    with at(FIRST):
        post_message(lead, actor=bob, message_type=Message.Type.NOTE, body_text="Internal",
                     notify=False)
        post_message(lead, author_partner=customer, message_type=Message.Type.EMAIL,
                     body_text="From the customer", notify=False)
        post_message(lead, actor=bob, message_type=Message.Type.SYSTEM,
                     body_text="Stage changed", notify=False)
        globex_lead = save_record(Lead(company=globex, name="Other"), actor=charlie)
        post_message(globex_lead, actor=charlie, body_text="Not acme's", notify=False)
    assert row(acme, "chatter.messages_posted") == (3, 1)

