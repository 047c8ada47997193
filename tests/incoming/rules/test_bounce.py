"""Delivery reports routed for real: each sample (tests/lib/samples/bounces) is tied to the
exact mail and recipient it reports, through X-Mailroom-ID, the Message-ID or the VERP
envelope, and the address is blacklisted only as the thresholds say."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailroom.contacts.models import Partner
from mailroom.core.tokens import mailroom_id
from mailroom.incoming.models import InboundMail
from mailroom.outgoing.models import FailureType, OutgoingRecipient

pytestmark = pytest.mark.django_db

SAMPLES = Path(__file__).parents[2] / "lib" / "samples" / "bounces"
D = InboundMail.Decision

# sample, its original Message-ID, its X-Mailroom-ID, the failed address, hard or soft
CASES = [
    ("postfix_user_unknown.eml", "<original-1@example.com>", "AbC123xyz",
     "jane.doe@customer.example", "hard"),
    ("exim_failed.eml", "<original-2@example.com>", "Exim42Qq", "bob.smith@partner.example",
     "hard"),
    ("exchange_o365_ndr.eml", "<original-3@example.com>", "Xch365abc",
     "m.mueller@contoso.com", "hard"),
    ("gmail_dsn.eml", "<original-4@example.com>", "GmL9k2pQ", "nosuchuser@gmail.com",
     "hard"),
    ("mailbox_full.eml", "<original-6@example.com>", "FuLL22abc", "kim@smallbiz.example",
     "soft"),
    ("qmail_failure.eml", "<original-7@example.com>", "QmL7zz01", "info@oldhost.example",
     "hard"),
]


def _send(lead, address):
    from mailroom.outgoing.services import enqueue

    partner = Partner.objects.create(company=lead.company, name=address, email=address)
    mail = enqueue(company=lead.company, email_from="sales@acme.test",
                   to=[partner, "someone.else@fine.example"], subject="Your quotation",
                   text="Attached.", record=lead)
    return mail, partner


def _sample(name, original_id, original_mrid, mail, *, keep_mrid=True) -> bytes:
    """The sample as a report on `mail`, with a Message-ID of its own each time."""
    import re
    import uuid

    raw = (SAMPLES / name).read_bytes()
    head, _, body = raw.partition(b"\n\n")
    head = re.sub(rb"(?im)^Message-ID:[^\n]*\n", b"", head)
    raw = b"Message-ID: <%s@report.example>\n" % uuid.uuid4().hex.encode() + head + b"\n\n" \
        + body
    raw = raw.replace(original_id.encode(), mail.message_id.encode())
    new_mrid = mailroom_id(mail.pk) if keep_mrid else "not-ours"
    return raw.replace(original_mrid.encode(), new_mrid.encode())


@pytest.mark.parametrize(("name", "original_id", "mrid", "address", "kind"), CASES,
                         ids=[c[0] for c in CASES])
def test_each_sample_marks_the_exact_recipient_bounced(deliver, lead, name, original_id, mrid,
                                                       address, kind):
    mail, partner = _send(lead, address)
    routed = deliver(_sample(name, original_id, mrid, mail), to=["bounce@acme.test"])
    assert routed.decision == D.BOUNCE, routed.reason
    assert routed.record == lead and routed.is_automatic
    failed = OutgoingRecipient.objects.get(mail=mail, address=address)
    assert failed.status == OutgoingRecipient.Status.BOUNCED
    assert failed.failure_type == (FailureType.HARD_BOUNCE if kind == "hard"
                                   else FailureType.SOFT_BOUNCE)
    other = OutgoingRecipient.objects.get(mail=mail, address="someone.else@fine.example")
    assert other.status == OutgoingRecipient.Status.PENDING
    partner.refresh_from_db()
    assert partner.bounce_count == 1 and not partner.is_blacklisted


def test_without_our_header_the_message_id_finds_the_mail(deliver, lead):
    mail, _ = _send(lead, "jane.doe@customer.example")
    raw = _sample(*CASES[0][:3], mail, keep_mrid=False)
    routed = deliver(raw, to=["bounce@acme.test"])
    assert "Message-ID" in " ".join(step["note"] for step in routed.trace)
    assert OutgoingRecipient.objects.get(
        mail=mail, address="jane.doe@customer.example").status == "bounced"


def test_the_verp_envelope_names_mail_and_recipient_even_when_the_report_does_not(
        deliver, lead):
    from mailroom.core.tokens import bounce_key
    from mailroom.lib import verp

    mail, _ = _send(lead, "jane.doe@customer.example")
    row = OutgoingRecipient.objects.get(mail=mail, address="jane.doe@customer.example")
    envelope = verp.make_bounce_address(mail_id=mail.pk, recipient_id=row.pk,
                                        domain="acme.test", key=bounce_key())
    raw = (SAMPLES / "qmail_failure.eml").read_bytes()  # reports another address entirely
    routed = deliver(raw, to=[envelope])
    assert routed.decision == D.BOUNCE and "VERP" in str(routed.trace)
    row.refresh_from_db()
    assert row.status == "bounced"


def test_a_delayed_report_changes_nothing(deliver, lead):
    mail, partner = _send(lead, "orders@slow-shop.example")
    raw = _sample("postfix_delayed.eml", "<original-5@example.com>", "DeLay5xyz", mail)
    routed = deliver(raw, to=["bounce@acme.test"])
    assert routed.decision == D.BOUNCE and "delayed" in routed.reason
    assert not OutgoingRecipient.objects.filter(mail=mail, status="bounced").exists()
    partner.refresh_from_db()
    assert partner.bounce_count == 0


def test_two_hard_bounces_blacklist_but_one_soft_bounce_does_not(deliver, lead):
    for _ in range(2):
        mail, _partner = _send(lead, "kim@smallbiz.example") if not Partner.objects.filter(
            email="kim@smallbiz.example").exists() else (_resend(lead, "kim@smallbiz.example"),
                                                        None)
        deliver(_sample("mailbox_full.eml", "<original-6@example.com>", "FuLL22abc", mail),
                to=["bounce@acme.test"])
    kim = Partner.objects.get(email="kim@smallbiz.example")
    assert kim.bounce_count == 2 and not kim.is_blacklisted  # soft: 5 needed
    for number in range(2):
        mail = _resend(lead, "jane.doe@customer.example", create=number == 0)
        deliver(_sample(*CASES[0][:3], mail), to=["bounce@acme.test"])
    jane = Partner.objects.get(email="jane.doe@customer.example")
    assert jane.is_blacklisted and jane.bounce_count == 2


def _resend(lead, address, create=False):
    from mailroom.outgoing.services import enqueue

    if create:
        Partner.objects.create(company=lead.company, name=address, email=address)
    partner = Partner.objects.get(email=address)
    return enqueue(company=lead.company, email_from="sales@acme.test", to=[partner],
                   subject="Again", text="Again.", record=lead)


def test_an_out_of_office_is_not_a_bounce_and_lands_on_the_thread(deliver, lead):
    mail, _ = _send(lead, "petra.weber@partner.example")
    raw = (SAMPLES / "out_of_office.eml").read_bytes().replace(
        b"<original-1@example.com>", mail.message_id.encode())
    routed = deliver(raw, to=["sales@acme.test"], sender="<>")
    assert routed.decision == D.POSTED and routed.record == lead and routed.is_automatic
    assert not OutgoingRecipient.objects.filter(status="bounced").exists()


def test_a_report_for_unknown_mail_is_logged_not_lost(deliver, lead):
    raw = (SAMPLES / "postfix_user_unknown.eml").read_bytes()
    routed = deliver(raw, to=["bounce@acme.test"])
    assert routed.decision == D.BOUNCE and "cannot find" in routed.reason
