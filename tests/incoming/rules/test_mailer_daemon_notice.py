"""A notice from MAILER-DAEMON that is no delivery report (a queue status: no report part, no
failed recipient, no SMTP error) is automatic mail and counts no bounce, wherever it lands."""

from __future__ import annotations

import pytest

from mailroom.business.crm.models import Lead
from mailroom.contacts.models import Partner
from mailroom.incoming.models import InboundMail
from mailroom.outgoing.models import OutgoingMail, OutgoingRecipient
from tests.incoming.conftest import email_fixture

pytestmark = pytest.mark.django_db

D = InboundMail.Decision


def test_a_queue_notice_to_the_verp_address_counts_nothing(deliver, lead):
    from mailroom.core.tokens import bounce_key
    from mailroom.lib import verp
    from mailroom.outgoing.services import enqueue

    partner = Partner.objects.create(company=lead.company, name="Buyer",
                                     email="buyer@partner.example")
    mail = enqueue(company=lead.company, email_from="sales@acme.test", to=[partner],
                   subject="Your quotation", text="Attached.", record=lead)
    row = OutgoingRecipient.objects.get(mail=mail)
    envelope = verp.make_bounce_address(mail_id=mail.pk, recipient_id=row.pk,
                                        domain="acme.test", key=bounce_key())
    routed = deliver(email_fixture("mailer_daemon_queue_notice.eml"), to=[envelope],
                     sender="<>")
    assert routed.decision == D.DROPPED and routed.is_automatic
    assert "automatic notice" in routed.reason and "no bounce" in routed.reason
    row.refresh_from_db()
    partner.refresh_from_db()
    assert row.status == OutgoingRecipient.Status.PENDING and not row.failure_type
    assert partner.bounce_count == 0 and not partner.is_blacklisted


def test_a_queue_notice_to_an_alias_is_automatic_mail_not_a_bounce(deliver):
    before = OutgoingMail.objects.count()
    routed = deliver(email_fixture("mailer_daemon_queue_notice.eml"), sender="<>")
    assert routed.decision != D.BOUNCE and routed.is_automatic
    assert "automatic notice" in str(routed.trace)
    assert not Lead.objects.exists()
    assert OutgoingMail.objects.count() == before  # nobody is answered
