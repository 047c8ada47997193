"""The email hub as a demanding user reads it: why a mail was not sent (in the list), Cancel
that asks first (never on a GET), no "it will be retried" once nothing will retry, and an
attempt count that matches the attempts listed."""

from __future__ import annotations

import re
from html import unescape

from django.template.loader import render_to_string
from django.test import RequestFactory

from mailroom.core.models import AuditLog
from mailroom.outgoing.models import FailureType, OutgoingMail, SendAttempt
from mailroom.outgoing.sending.engine import Sender
from tests.outgoing import smtp_peer
from tests.outgoing import test_hub_views as hub
from tests.outgoing.smtp_peer import refused_port
from tests.outgoing.test_hub_views import HUB, action, detail, make_mail
from tests.outgoing.test_sender import Clock, make_server

certs, sink = smtp_peer.certs, smtp_peer.sink
failed, sent, server = hub.failed, hub.sent, hub.server  # the hub tests' fixtures
RETRY_PROMISE = "will be retried"


def run_pass(clock) -> None:
    sender = Sender("w1", clock=clock, rand=lambda: 0.0, timeout=2, step_seconds=0)
    try:
        sender.run_once()
    finally:
        sender.close()


def greylisted_mail(acme, sink):
    """A mail the peer refuses for now (451 at RCPT): deferred, waiting for its retry."""
    make_server(acme, sink)
    sink.faults.rcpt["*"] = "451 4.7.1 Greylisted, try again later"
    mail = make_mail(acme, subject="Greylisted quote")
    run_pass(Clock())
    mail.refresh_from_db()
    assert mail.state == "deferred" and RETRY_PROMISE in mail.failure_reason
    return mail


# ---------------------------------------------------------------- failure reason in the list
def test_the_list_says_why_a_mail_was_not_sent_with_the_full_reason_on_hover(
        client_for, mia, failed, sent):
    html = client_for(mia).get(HUB).content.decode()
    assert "Why not sent" in html
    cell = re.search(r'<span class="mr-failure" title="([^"]*)">([^<]*)</span>', html)
    assert cell, html
    assert cell.group(1) == "550 5.1.1 mailbox unavailable"
    assert cell.group(2) == "Rejected by the recipient&#x27;s server"
    assert html.count('class="mr-failure"') == 1  # the sent mail has no reason


def test_a_reason_without_a_type_is_cut_short_in_the_list(client_for, mia, acme):
    long = "The sender waits for the server's hourly limit to open again; " * 3
    mail = make_mail(acme, subject="Rate limited")
    OutgoingMail.objects.filter(pk=mail.pk).update(state="deferred", failure_reason=long)
    html = client_for(mia).get(HUB).content.decode()
    cell = re.search(r'<span class="mr-failure" title="([^"]*)">([^<]*)</span>', html)
    full, short = unescape(cell.group(1)), unescape(cell.group(2))
    assert full == long
    assert short.endswith("…") and len(short) <= 60 and full.startswith(short[:-1])


# ---------------------------------------------------------------- Cancel asks first
def test_cancel_on_the_detail_page_is_a_link_to_a_confirmation_that_changes_nothing(
        client_for, mia, failed):
    client = client_for(mia)
    page = client.get(detail(failed)).content.decode()
    assert f'href="{action(failed, "cancel")}?next=' in page
    assert f'action="{action(failed, "cancel")}"' not in page  # no direct POST button
    response = client.get(action(failed, "cancel"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Cancel this email?" in html and "Quote for the big deal" in html
    assert f'<form method="post" action="{action(failed, "cancel")}"' in html
    failed.refresh_from_db()
    assert failed.state == "exception"
    assert not AuditLog.objects.filter(action="outgoing.cancel").exists()

    response = client.post(action(failed, "cancel"), {"next": detail(failed)})
    assert response.status_code == 302 and response["Location"] == detail(failed)
    failed.refresh_from_db()
    assert failed.state == "cancelled"
    assert AuditLog.objects.filter(action="outgoing.cancel").count() == 1


def test_the_confirmation_of_a_mail_that_cannot_be_cancelled_offers_nothing(
        client_for, mia, sent):
    html = client_for(mia).get(action(sent, "cancel")).content.decode()
    assert "Nothing to cancel" in html and "mail-cancel-confirm" not in html


def test_only_mail_managers_reach_the_confirmation_and_other_actions_stay_post_only(
        client_for, bob, mia, failed, globex):
    assert client_for(bob).get(action(failed, "cancel")).status_code == 403
    assert client_for(mia).get(action(failed, "retry")).status_code == 405
    foreign = make_mail(globex, subject="Globex payroll", email_from="hr@globex.example")
    assert client_for(mia).get(action(foreign, "cancel")).status_code == 404


def test_bulk_cancel_lists_the_mails_and_asks_before_cancelling(
        client_for, mia, failed, sent, acme):
    waiting = make_mail(acme, subject="Reminder")
    client = client_for(mia)
    response = client.post(HUB, {"action": "cancel_selected",
                                 "_selected_action": [failed.pk, sent.pk, waiting.pk]})
    html = response.content.decode()
    assert response.status_code == 200
    assert "Cancel 2 email(s)?" in html and "Reminder" in html
    assert "1 of the selected emails cannot be cancelled" in html
    for pk in (failed.pk, sent.pk, waiting.pk):
        assert f'name="_selected_action" value="{pk}"' in html
    assert set(OutgoingMail.objects.values_list("state", flat=True)) == {
        "exception", "sent", "outgoing"}

    response = client.post(HUB, {"action": "cancel_selected", "confirm": "yes",
                                 "_selected_action": [failed.pk, sent.pk, waiting.pk]},
                           follow=True)
    assert "Cancelled: 2." in response.content.decode()
    assert dict(OutgoingMail.objects.values_list("subject", "state")) == {
        "Quote for the big deal": "cancelled", "Reminder": "cancelled",
        "Welcome aboard": "sent"}


# ---------------------------------------------------------------- cancelled: no retry promise
def test_a_deferred_mail_says_it_will_be_retried_until_it_is_cancelled(
        client_for, mia, acme, sink):
    mail = greylisted_mail(acme, sink)
    client = client_for(mia)
    assert RETRY_PROMISE in client.get(detail(mail)).content.decode()

    client.post(action(mail, "cancel"))
    mail.refresh_from_db()
    assert mail.state == "cancelled"
    listing = client.get(HUB).content.decode()
    page = client.get(detail(mail)).content.decode()
    assert RETRY_PROMISE not in listing and RETRY_PROMISE not in page
    assert "Cancelled: this email will not be sent." in page
    assert "Greylisted" in page  # what happened before is still told
    assert "Not sent (cancelled)" in page  # the recipient is no longer "Pending"
    request = RequestFactory().get("/")
    request.user = mia
    chatter = render_to_string("chatter/partials/mail_status.html", {
        "message": type("M", (), {"pk": 1})(), "mails": [mail]}, request=request)
    assert "Not sent: cancelled" in chatter and RETRY_PROMISE not in chatter


def test_a_mail_given_up_on_no_longer_promises_a_retry(client_for, mia, acme):
    mail = make_mail(acme, subject="Given up")
    OutgoingMail.objects.filter(pk=mail.pk).update(
        state="exception", failure_type=FailureType.REJECTED,
        failure_reason="Given up after 4 days of retries: The server refused the recipient "
                       "ada@client.example for now, it will be retried: 451 try later")
    mail.refresh_from_db()
    page = client_for(mia).get(detail(mail)).content.decode()
    assert RETRY_PROMISE not in page
    assert "refused the recipient ada@client.example temporarily: 451" in page
    request = RequestFactory().get("/")
    request.user = mia
    chatter = render_to_string("chatter/partials/mail_status.html", {
        "message": type("M", (), {"pk": 1})(), "mails": [mail]}, request=request)
    assert "Given up after 4 days" in chatter and RETRY_PROMISE not in chatter


# ---------------------------------------------------------------- attempts agree
def attempts_shown(html: str) -> tuple[int, int]:
    count = int(re.search(r'id="mail-attempt-count">(\d+)<', html).group(1))
    table = re.search(r'<table class="mr-table" id="mail-attempts">(.*?)</table>', html, re.S)
    rows = table.group(1).count("<tr>") - 1 if table else 0  # minus the header row
    return count, rows


def test_an_unreachable_server_leaves_an_attempt_row_for_each_counted_attempt(
        client_for, mia, acme):
    make_server(acme, refused_port(), name="Dead relay")
    mail = make_mail(acme, subject="Nobody answers")
    clock = Clock()
    run_pass(clock)
    mail.refresh_from_db()
    assert mail.state == "deferred" and mail.failure_type == FailureType.UNREACHABLE
    assert mail.attempt_count == 1 == SendAttempt.objects.filter(mail=mail).count()
    attempt = SendAttempt.objects.get(mail=mail)
    assert attempt.outcome == "deferred" and attempt.server_name == "Dead relay"
    assert "refused the connection" in attempt.smtp_reply

    html = client_for(mia).get(detail(mail)).content.decode()
    assert attempts_shown(html) == (1, 1)
    assert "Attempts (1)" in html


def test_no_matching_server_counts_an_attempt_and_lists_it(client_for, mia, acme, sink):
    make_server(acme, sink, from_filter="other.example")
    mail = make_mail(acme, subject="No server")
    run_pass(Clock())
    mail.refresh_from_db()
    assert mail.state == "deferred" and mail.failure_type == FailureType.NO_SERVER
    html = client_for(mia).get(detail(mail)).content.decode()
    assert attempts_shown(html) == (mail.attempt_count, mail.attempt_count) == (1, 1)
    assert "No active outgoing server" in html


def test_a_greeting_421_then_delivery_lists_both_attempts(client_for, mia, acme, sink):
    make_server(acme, sink)
    sink.faults.greeting = "421 4.3.2 Too busy"
    mail = make_mail(acme, subject="Busy server")
    clock = Clock()
    run_pass(clock)
    sink.faults.clear()
    clock.advance(seconds=120)
    run_pass(clock)
    mail.refresh_from_db()
    assert mail.state == "sent" and mail.attempt_count == 2
    assert list(SendAttempt.objects.filter(mail=mail).order_by("id")
                .values_list("outcome", flat=True)) == ["deferred", "sent"]
    html = client_for(mia).get(detail(mail)).content.decode()
    assert attempts_shown(html) == (2, 2)

