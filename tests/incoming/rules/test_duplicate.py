"""The duplicate rule: the same Message-ID twice, and mail Mailroom sent itself."""

from __future__ import annotations

import pytest

from mailroom.business.crm.models import Lead
from mailroom.incoming.models import InboundMail
from tests.incoming.conftest import _sent_from, message

pytestmark = pytest.mark.django_db

D = InboundMail.Decision


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
