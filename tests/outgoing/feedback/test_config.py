"""The webhook on the server's admin page: the address to paste, write-only keys checked on
save, audited through the server service."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from mailroom.core.models import AuditLog
from mailroom.outgoing import server_services
from mailroom.outgoing.models import MailServer
from tests.outgoing.feedback.conftest import make_relay
from tests.outgoing.test_server_admin import change_url, form_data

pytestmark = pytest.mark.django_db


def test_the_change_page_shows_the_address_and_never_the_key(client_for, acme, mia,
                                                             sendgrid_key, settings):
    relay = make_relay(acme, mia, "SendGrid", "sendgrid", sendgrid_key[1])
    assert relay.feedback_token and str(relay.pk) != relay.feedback_token
    page = client_for(mia).get(change_url(relay)).content.decode()
    address = f"{settings.BASE_URL.rstrip('/')}/hooks/feedback/{relay.feedback_token}/"
    assert address in page
    assert "Signed Event Webhook" in page  # the help for SendGrid
    assert sendgrid_key[1] not in page
    assert "A webhook verification key is stored" in page


def test_admin_edits_check_the_key_and_are_audited(client_for, acme, mia, sendgrid_key):
    relay = make_relay(acme, mia, "Relay", "none")
    client = client_for(mia)
    bad = client.post(change_url(relay), form_data(relay, feedback_kind="sendgrid",
                                                   feedback_secret="not a key"))
    assert bad.status_code == 200
    assert "not SendGrid" in bad.content.decode()
    assert MailServer.objects.get(pk=relay.pk).feedback_kind == "none"
    good = client.post(change_url(relay), form_data(relay, feedback_kind="sendgrid",
                                                    feedback_secret=sendgrid_key[1]))
    assert good.status_code == 302, good.content.decode()[:2000]
    stored = MailServer.objects.get(pk=relay.pk)
    assert (stored.feedback_kind, stored.feedback_secret) == ("sendgrid", sendgrid_key[1])
    assert stored.feedback_token == relay.feedback_token
    entry = AuditLog.objects.filter(action="mailserver.update",
                                    object_id=str(relay.pk)).latest("pk")
    assert entry.after["feedback_kind"] == "sendgrid"
    assert entry.after["feedback_secret"] == "********"
    assert sendgrid_key[1] not in str(entry.before) + str(entry.after)
    # saving again without typing the key keeps it
    client.post(change_url(relay), form_data(stored, feedback_kind="sendgrid"))
    assert MailServer.objects.get(pk=relay.pk).feedback_secret == sendgrid_key[1]


def test_mailgun_needs_its_signing_key(acme, mia):
    with pytest.raises(ValidationError) as refused:
        make_relay(acme, mia, "Mailgun", "mailgun", "")
    assert "signing key" in str(refused.value)


def test_each_server_has_its_own_token(acme, mia):
    one = make_relay(acme, mia, "One", "ses")
    two = make_relay(acme, mia, "Two", "ses")
    assert one.feedback_token != two.feedback_token and len(one.feedback_token) >= 30
    server_services.save_server(one, actor=mia)
    assert MailServer.objects.get(pk=one.pk).feedback_token == one.feedback_token
