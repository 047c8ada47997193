"""A message whose From is an empty group (`undisclosed-recipients:;`) names no sender. It is
not dropped as automatic mail on the strength of its envelope's no-reply address: it becomes a
record from an unknown sender — no contact made, nobody answered — and the log says why."""

from __future__ import annotations

import pytest

from mailroom.business.crm.models import Lead
from mailroom.chatter.models import Message
from mailroom.contacts.models import Partner
from mailroom.incoming.models import InboundMail
from mailroom.outgoing.models import OutgoingMail
from tests.incoming.conftest import email_fixture

pytestmark = pytest.mark.django_db

D = InboundMail.Decision


def test_an_empty_group_from_makes_a_record_from_an_unknown_sender(deliver):
    mail = deliver(email_fixture("from_empty_group.eml"),
                   sender="no-reply@webforms.shopsite.example")
    assert mail.decision == D.CREATED, mail.reason
    assert "unknown sender" in mail.reason and "undisclosed-recipients:;" in mail.reason
    assert not mail.is_automatic and mail.from_address == ""
    lead = Lead.objects.get()
    assert lead.name == "Enquiry from the contact form: 40 licences"
    posted = Message.objects.get(pk=mail.chatter_message_id)
    assert posted.author_partner is None
    assert posted.author_name == "Unknown sender (no address in From)"
    assert "40 licences" in posted.body_html
    assert not Partner.objects.filter(email__icontains="shopsite").exists()
    assert not OutgoingMail.objects.exists()  # nobody to answer
    assert "empty group" in str(mail.trace)


def test_its_own_automatic_headers_still_count(deliver):
    raw = email_fixture("from_empty_group.eml").replace(
        b"X-Mailer: PHPMailer 5.2.9\r\n", b"Auto-Submitted: auto-generated\r\n")
    mail = deliver(raw, sender="no-reply@webforms.shopsite.example")
    assert mail.decision == D.DROPPED and mail.is_automatic
    assert "Auto-Submitted" in mail.reason and "no-reply" not in mail.reason
