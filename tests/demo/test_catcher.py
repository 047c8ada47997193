"""The mail catcher: a mail queued and sent by the real sender reaches it over SMTP, is stored
whole and shows on the Caught mail page — to Mail Managers of the sending company only."""

from __future__ import annotations

import smtplib

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils.html import escape

from mailroom.demo import services
from mailroom.demo.models import CaughtMail
from mailroom.outgoing import services as outgoing_services
from mailroom.outgoing.models import OutgoingMail
from mailroom.outgoing.sending.engine import Sender

pytestmark = pytest.mark.django_db(transaction=True)


def send_through_the_worker(company, **fields) -> OutgoingMail:
    """Queue with the outbox's own service, then run the worker's send step once."""
    mail = outgoing_services.enqueue(company=company, **fields)
    sender = Sender("catcher-test", timeout=5, step_seconds=0)
    try:
        assert sender.run_once() == 1
    finally:
        sender.close()
    mail.refresh_from_db()
    return mail


@pytest.fixture
def demo_server(acme, catcher):
    return services.create_demo_server(acme)


def test_demo_server_points_at_the_catcher_active_and_tested(demo_server, catcher):
    assert demo_server.name == "Demo: nothing leaves this machine"
    assert (demo_server.host, demo_server.port) == ("127.0.0.1", catcher.port)
    assert demo_server.security == "none" and demo_server.auth == "none"
    assert demo_server.active
    # the connection test against the catcher passed, so mass mailing may use it too
    assert demo_server.test_status == "ok"
    assert demo_server.purpose == "both"


def test_a_mail_sent_by_the_worker_is_caught_and_shown(acme, mia, client_for, demo_server):
    mail = send_through_the_worker(
        acme, email_from="Acme <hello@acme.test>", to=["ada@client.example"],
        cc=["boss@client.example"], subject="Your quotation S00042",
        html="<p>Dear Ada, <b>here it is</b>.</p><script>alert(1)</script>",
        text="Dear Ada, here it is.")
    assert mail.state == OutgoingMail.State.SENT
    assert mail.used_server_id == demo_server.pk

    # one envelope per recipient (VERP: each has its own bounce address)
    copies = list(CaughtMail.objects.order_by("id"))
    assert sorted(a for c in copies for a in c.envelope_to) == [
        "ada@client.example", "boss@client.example"]
    caught = copies[0]
    assert {c.subject for c in copies} == {"Your quotation S00042"}
    assert {c.message_id for c in copies} == {mail.message_id}
    assert {c.company_id for c in copies} == {acme.pk}
    assert caught.envelope_from.startswith("bounce")  # the mail's VERP return path
    raw = services.raw_bytes(caught)
    assert b"Subject: Your quotation S00042" in raw and caught.size == len(raw)

    client = client_for(mia)
    listing = client.get(reverse("demo:caught_list")).content.decode()
    assert "Your quotation S00042" in listing and "ada@client.example" in listing
    detail = client.get(reverse("demo:caught_detail", args=[caught.pk])).content.decode()
    assert 'sandbox=""' in detail and reverse("demo:caught_body", args=[caught.pk]) in detail
    assert "Dear Ada, here it is." in detail  # the text part
    assert escape(mail.message_id) in detail  # the headers
    body = client.get(reverse("demo:caught_body", args=[caught.pk]))
    assert b"<b>here it is</b>" in body.content
    assert "sandbox" in body["Content-Security-Policy"]
    assert "script-src" not in body["Content-Security-Policy"]  # default-src 'none' holds
    eml = client.get(reverse("demo:caught_raw", args=[caught.pk]))
    assert eml.content == raw and eml["Content-Type"] == "message/rfc822"


def test_newest_first_and_only_for_mail_managers_of_the_company(
        acme, globex, mia, bob, charlie, client_for, catcher):
    with smtplib.SMTP("127.0.0.1", catcher.port, timeout=5) as smtp:
        for n in (1, 2):
            smtp.sendmail("script@localhost", ["x@example.test"],
                          f"Subject: From a script {n}\r\n\r\nHello {n}\r\n".encode())
    acme_mail = CaughtMail.objects.filter(subject="From a script 1").get()
    assert acme_mail.company is None  # not from Mailroom's outbox: shown to every manager
    globex_mail = CaughtMail.objects.create(company=globex, subject="Globex only", sha256="0",
                                            size=1)
    client = client_for(mia)
    listing = client.get(reverse("demo:caught_list")).content.decode()
    assert listing.index("From a script 2") < listing.index("From a script 1")
    assert "Globex only" not in listing
    assert client.get(reverse("demo:caught_detail", args=[globex_mail.pk])).status_code == 404
    assert client.get(reverse("demo:caught_body", args=[globex_mail.pk])).status_code == 404
    client.logout()
    assert client_for(bob).get(reverse("demo:caught_list")).status_code == 403


def test_the_sidebar_names_caught_mail_only_while_the_catcher_is_on(
        acme, mia, client_for, settings):
    client = client_for(mia)
    assert reverse("demo:caught_list") in client.get("/").content.decode()
    settings.MAILROOM_MAIL_CATCHER = ""
    assert reverse("demo:caught_list") not in client.get("/").content.decode()


def test_the_catcher_listens_on_loopback_only():
    with pytest.raises(CommandError, match="loopback only"):
        call_command("catcher", "--listen", "0.0.0.0:2526")
