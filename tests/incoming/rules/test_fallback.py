"""The fallback rule: mail to no alias is refused with exactly one reply."""

from __future__ import annotations

import pytest

from mailroom.incoming.models import InboundMail
from mailroom.outgoing.models import OutgoingMail
from tests.incoming.conftest import message

pytestmark = pytest.mark.django_db

D = InboundMail.Decision


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
