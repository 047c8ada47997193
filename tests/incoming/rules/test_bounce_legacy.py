"""Legacy bounces (tests/lib/samples/bounces/legacy) routed for real to the bounce address:
the recipient the report names is marked bounced, hard or soft as the report says, a dead
address is blacklisted after the hard threshold (2), and delay warnings count nothing."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from mailroom.contacts.models import Partner
from mailroom.incoming.models import InboundMail
from mailroom.outgoing.models import FailureType, OutgoingRecipient
from tests.lib.test_bounces_legacy import DELAYS, PERMANENT

pytestmark = pytest.mark.django_db

LEGACY = Path(__file__).parents[2] / "lib" / "samples" / "bounces" / "legacy"
D = InboundMail.Decision


def _send(lead, address):
    from mailroom.outgoing.services import enqueue

    partner = Partner.objects.filter(company=lead.company, email=address).first() or \
        Partner.objects.create(company=lead.company, name=address, email=address)
    return enqueue(company=lead.company, email_from="sales@acme.test",
                   to=[partner, "someone.else@fine.example"], subject="Your quotation",
                   text="Attached.", record=lead)


def _report(name: str, mail) -> bytes:
    """The sample as a report on `mail` (its returned Message-ID), with an id of its own."""
    raw = (LEGACY / name).read_bytes()
    for found in re.findall(rb"<legacy-[a-z0-9-]+@acme\.test>", raw):
        raw = raw.replace(found, mail.message_id.encode())
    head, _, body = raw.partition(b"\n\n")
    head = re.sub(rb"(?im)^Message-ID:[^\n]*\n", b"", head)
    return b"Message-ID: <%s@report.example>\n" % uuid.uuid4().hex.encode() + head + \
        b"\n\n" + body


@pytest.mark.parametrize(("name", "address", "kind"), PERMANENT, ids=[c[0] for c in PERMANENT])
def test_each_legacy_bounce_marks_its_recipient(deliver, lead, name, address, kind):
    mail = _send(lead, address)
    routed = deliver(_report(name, mail), to=["bounce@acme.test"], sender="<>")
    assert routed.decision == D.BOUNCE, routed.reason
    assert routed.record == lead and routed.is_automatic
    failed = OutgoingRecipient.objects.get(mail=mail, address=address)
    assert failed.status == OutgoingRecipient.Status.BOUNCED
    assert failed.failure_type == (FailureType.HARD_BOUNCE if kind == "hard"
                                   else FailureType.SOFT_BOUNCE)
    other = OutgoingRecipient.objects.get(mail=mail, address="someone.else@fine.example")
    assert other.status == OutgoingRecipient.Status.PENDING


def test_a_dead_address_is_blacklisted_after_two_legacy_hard_bounces(deliver, lead):
    for name in ("groupwise.eml", "groupwise.eml"):
        mail = _send(lead, "mary.jones@county.example")
        deliver(_report(name, mail), to=["bounce@acme.test"], sender="<>")
    mary = Partner.objects.get(email="mary.jones@county.example")
    assert mary.bounce_count == 2 and mary.is_blacklisted


def test_without_returned_headers_the_recipient_names_the_mail(deliver, lead):
    """A relay rewrote the envelope (plain bounce@) and the report returns no headers: the
    failed address found by the legacy detectors attributes the bounce."""
    older = _send(lead, "h.brandt@lawfirm.example")
    mail = _send(lead, "h.brandt@lawfirm.example")
    raw = (LEGACY / "exchange55_ndr.eml").read_bytes().replace(
        b"Message-ID: <legacy-exchange55@acme.test>\n", b"")
    routed = deliver(raw, to=["bounce@acme.test"], sender="<>")
    assert routed.decision == D.BOUNCE and "failed recipient" in str(routed.trace)
    row = OutgoingRecipient.objects.get(mail=mail, address="h.brandt@lawfirm.example")
    assert (row.status, row.failure_type) == ("bounced", FailureType.HARD_BOUNCE)
    assert OutgoingRecipient.objects.get(mail=older, address="h.brandt@lawfirm.example"
                                         ).status == "pending"


@pytest.mark.parametrize(("name", "address"), DELAYS, ids=[c[0] for c in DELAYS])
def test_delay_warnings_count_nothing(deliver, lead, name, address):
    mail = _send(lead, address or "buyer@partner.example")
    routed = deliver(_report(name, mail), to=["bounce@acme.test"], sender="<>")
    assert routed.decision == D.BOUNCE and "delayed" in routed.reason, routed.reason
    assert not OutgoingRecipient.objects.filter(mail=mail, status="bounced").exists()
    assert Partner.objects.get(email=address or "buyer@partner.example").bounce_count == 0
