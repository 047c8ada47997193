"""The email hub in a real browser: filters, the detail page, Retry/Cancel, the dashboard and
the chatter's failed-mail line; a plain User sees no actions."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from mailroom.outgoing import services
from mailroom.outgoing.models import FailureType, OutgoingMail, OutgoingRecipient, SendAttempt
from tests.browser.conftest import PHONE

pytestmark = pytest.mark.browser

HUB = reverse("admin:outgoing_outgoingmail_changelist")


def make_mail(company, subject, to, state="outgoing", **fields):
    extra = {k: fields.pop(k) for k in ("record", "chatter_message", "priority") if k in fields}
    mail = services.enqueue(company=company, email_from="Acme <billing@acme.example>", to=[to],
                            subject=subject, text="Plain version",
                            html=f"<h1>{subject}</h1><p>Dear customer, "
                                 f'<img src="https://tracker.example/p.gif" alt="pixel"></p>',
                            **extra)
    OutgoingMail.objects.filter(pk=mail.pk).update(state=state, **fields)
    mail.refresh_from_db()
    return mail


@pytest.fixture
def mails(acme, lead):
    failed = make_mail(acme, "Quote for the big deal", "boss@client.example", "exception",
                       record=lead, failure_type=FailureType.REJECTED,
                       failure_reason="550 5.1.1 <boss@client.example>: mailbox unavailable")
    failed.recipients.update(status=OutgoingRecipient.Status.FAILED,
                             failure_type=FailureType.REJECTED, smtp_code=550,
                             failure_reason="mailbox unavailable")
    SendAttempt.objects.create(mail=failed, server_name="Relay", outcome="failed",
                               smtp_code=550, smtp_reply="5.1.1 mailbox unavailable",
                               duration_ms=38)
    sent = make_mail(acme, "Welcome aboard", "zoe@other.example", "sent",
                     sent_at=timezone.now(), was_uncertain=True)
    waiting = make_mail(acme, "Monthly newsletter", "list@client.example",
                        priority=OutgoingMail.Priority.LOW)
    return {"failed": failed, "sent": sent, "waiting": waiting}


def detail_url(mail) -> str:
    return reverse("admin:outgoing_outgoingmail_change", args=[mail.pk])


def rows(page):
    return page.locator("#result_list tbody tr")


def test_manager_filters_opens_a_mail_and_retries_then_cancels(open_page, mia, mails, shot):
    page = open_page(mia)
    page.goto(HUB)
    expect(rows(page)).to_have_count(3)
    shot(page, "hub")
    # the state strip filters the list
    page.locator("#hub-counts a[data-state=exception]").click()
    expect(rows(page)).to_have_count(1)
    expect(page.locator("#result_list")).to_contain_text("Quote for the big deal")
    # search by recipient
    page.goto(HUB)
    page.locator("#searchbar").fill("zoe@other")
    page.locator("#searchbar").press("Enter")
    expect(rows(page)).to_have_count(1)
    expect(page.locator("#result_list")).to_contain_text("Welcome aboard")
    # filter panel: priority
    page.goto(HUB)
    page.locator(".filter-open-button").click()
    page.locator("select[name=priority__exact]").select_option("3")
    page.get_by_role("button", name="Apply Filters").click()
    expect(rows(page)).to_have_count(1)
    expect(page.locator("#result_list")).to_contain_text("Monthly newsletter")

    page.goto(HUB)
    page.get_by_role("link", name="Quote for the big deal").click()
    expect(page.locator("#mail-detail h1")).to_have_text("Quote for the big deal")
    body = page.frame_locator("iframe.mr-body-frame")
    expect(body.locator("h1")).to_have_text("Quote for the big deal")
    expect(page.locator("#mail-recipients")).to_contain_text("mailbox unavailable")
    expect(page.locator("#mail-attempts")).to_contain_text("38 ms")
    expect(page.locator("#mail-record a")).to_have_attribute(
        "href", reverse("admin:crm_lead_change", args=[mails["failed"].record.pk]))
    shot(page, "detail")

    page.get_by_role("button", name="Retry").click()
    expect(page.get_by_text("Queued again.")).to_be_visible()
    expect(page.locator(".mr-hub-chips")).to_contain_text("Outgoing")
    page.get_by_role("button", name="Cancel").click()
    page.get_by_role("button", name="Yes, cancel the email").click()  # it asks first
    expect(page.get_by_text("Cancelled: it will not be sent.")).to_be_visible()
    expect(page.locator(".mr-hub-chips")).to_contain_text("Cancelled")
    expect(page.get_by_role("button", name="Cancel")).to_have_count(0)
    mails["failed"].refresh_from_db()
    assert mails["failed"].state == "cancelled"


def test_remote_images_and_scripts_never_load_in_the_body(open_page, mia, mails, live_server):
    page = open_page(mia)
    remote: list[str] = []
    page.on("requestfinished", lambda r: remote.append(r.url)
            if not r.url.startswith(live_server.url) and not r.url.startswith("data:") else None)
    blocked: list[str] = []
    page.on("requestfailed", lambda r: blocked.append(f"{r.url} {r.failure}"))
    page.goto(detail_url(mails["failed"]))
    expect(page.frame_locator("iframe.mr-body-frame").locator("h1")).to_be_visible()
    page.wait_for_timeout(300)
    assert remote == []
    assert any(line.startswith("https://tracker.example/") for line in blocked), blocked


def test_manager_bulk_cancel_from_the_list(open_page, mia, mails):
    page = open_page(mia)
    page.goto(HUB)
    for mail in (mails["failed"], mails["waiting"]):
        page.locator(f"input.action-select[value='{mail.pk}']").check()
    page.locator("select[name=action]").select_option("cancel_selected")
    page.locator("button[name=index]").first.click()
    page.get_by_role("button", name="Yes, cancel 2 emails").click()  # it asks first
    expect(page.get_by_text("Cancelled: 2.")).to_be_visible()
    assert set(OutgoingMail.objects.filter(state="cancelled").values_list("subject",
                                                                         flat=True)) == {
        "Quote for the big deal", "Monthly newsletter"}


def test_plain_user_sees_no_actions(open_page, bob, mails, shot):
    page = open_page(bob)
    page.goto(HUB)
    expect(rows(page)).to_have_count(3)
    expect(page.locator("input.action-select")).to_have_count(0)
    expect(page.locator("select[name=action]")).to_have_count(0)
    page.get_by_role("link", name="Quote for the big deal").click()
    expect(page.locator("#mail-recipients")).to_be_visible()
    expect(page.get_by_role("button", name="Retry")).to_have_count(0)
    expect(page.get_by_role("button", name="Cancel")).to_have_count(0)
    expect(page.locator(".mr-hub-actions")).to_have_count(0)
    shot(page, "detail-read-only")


def test_uncertain_flag_and_dashboard(open_page, mia, mails, shot):
    page = open_page(mia)
    page.goto(detail_url(mails["sent"]))
    expect(page.locator("#mail-uncertain")).to_contain_text("May have been delivered twice")
    page.goto(reverse("outgoing:dashboard"))
    expect(page.locator("#email-counts a[data-state=exception] .mr-count-n")).to_have_text("1")
    expect(page.locator("#email-counts a[data-state=sent] .mr-count-n")).to_have_text("1")
    expect(page.locator("canvas.chart")).to_be_visible()
    shot(page, "dashboard")
    page.locator("#email-counts a[data-state=outgoing]").click()
    expect(rows(page)).to_have_count(1)


def test_resend_a_failed_mail_from_the_record_chatter(open_page, mia, acme, lead, shot):
    from django.contrib.contenttypes.models import ContentType

    from mailroom.chatter.models import Message

    message = Message.objects.create(
        company=acme, content_type=ContentType.objects.get_for_model(lead), object_id=lead.pk,
        message_type="email", direction="out", subject="Your quote",
        body_html="<p>Here is the quote.</p>", author_name="Mia")
    mail = make_mail(acme, "Your quote", "ada@client.example", "exception", record=lead,
                     chatter_message=message, failure_type=FailureType.INVALID_RECIPIENT,
                     failure_reason="ada@client.example does not exist")
    page = open_page(mia)
    page.goto(reverse("admin:crm_lead_change", args=[lead.pk]))
    status = page.locator(f"#mail-status-{message.pk}")
    expect(status).to_contain_text("Failed: Invalid recipient")
    shot(page, "chatter-failed")
    status.get_by_role("button", name="Resend").click()
    expect(page.locator(f"#mail-status-{message.pk}")).to_contain_text("Queued")
    mail.refresh_from_db()
    assert mail.state == "outgoing"
    dialogs = []
    page.once("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.locator(f"#mail-status-{message.pk}").get_by_role("button", name="Cancel").click()
    expect(page.locator(f"#mail-status-{message.pk}")).to_contain_text("Queued")
    assert dialogs and "Cancel this email?" in dialogs[0]  # asked first: kept when refused
    mail.refresh_from_db()
    assert mail.state == "outgoing"
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(f"#mail-status-{message.pk}").get_by_role("button", name="Cancel").click()
    expect(page.locator(f"#mail-status-{message.pk}")).to_contain_text("Not sent: cancelled")


@pytest.mark.parametrize("who", ["mia"])
def test_pages_on_a_phone(open_page, request, who, mails, shot):
    user = request.getfixturevalue(who)
    page = open_page(user, viewport=PHONE)
    page.goto(HUB)
    expect(rows(page)).to_have_count(3)
    shot(page, "hub-phone")
    page.goto(detail_url(mails["failed"]))
    expect(page.get_by_role("button", name="Retry")).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"] + 1, f"the detail page scrolls sideways ({width}px)"
    shot(page, "detail-phone")
    page.goto(reverse("outgoing:dashboard"))
    expect(page.locator("canvas.chart")).to_be_visible()
    shot(page, "dashboard-phone")


def test_server_test_connection_and_dkim_key(open_page, mia, acme, shot):
    import socket

    from aiosmtpd.controller import Controller

    from mailroom.outgoing.models import DkimKey, MailServer

    class Plain:
        async def handle_DATA(self, server, session, envelope):
            return "250 OK"

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    peer = Controller(Plain(), hostname="127.0.0.1", port=port)
    peer.start()
    try:
        server = MailServer.objects.create(
            company=acme, name="Loopback relay", host="127.0.0.1", port=port, security="none",
            auth="password", username="relay", password="do-not-show-me", purpose="bulk",
            active=False)
        page = open_page(mia)
        page.goto(reverse("admin:outgoing_mailserver_change", args=[server.pk]))
        expect(page.locator("#server-test")).to_contain_text("Not tested")
        assert "do-not-show-me" not in page.content()
        shot(page, "server")
        page.locator("#test-connection").click()  # a password never travels in clear
        expect(page.get_by_text(re.compile("connection test failed — Credentials are never "
                                           "sent over an unencrypted connection"))).to_be_visible()
        expect(page.locator("#server-test")).to_contain_text("Test failed")
        shot(page, "server-failed")
        MailServer.objects.filter(pk=server.pk).update(auth="none", password="")
        page.locator("#test-connection").click()
        expect(page.get_by_text(re.compile("connection test passed"))).to_be_visible()
        expect(page.locator("#server-test")).to_contain_text("Test passed")
    finally:
        peer.stop()

    page.goto(reverse("admin:outgoing_dkimkey_add"))
    page.fill("#id_domain", "acme.example")
    shot(page, "dkim-add")
    page.locator("#dkim-generate").click()
    expect(page.locator("#dkim-name")).to_have_text("mailroom._domainkey.acme.example")
    expect(page.locator("#dkim-value")).to_contain_text("v=DKIM1; k=rsa; p=")
    key = DkimKey.objects.get()
    assert key.private_key.splitlines()[1] not in page.content()
    shot(page, "dkim")


def test_server_form_on_a_phone(open_page, mia, shot):
    page = open_page(mia, viewport=PHONE)
    page.goto(reverse("admin:outgoing_mailserver_add"))
    expect(page.locator("#id_password")).to_have_attribute("type", "password")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"] + 1, f"the server form scrolls sideways ({width}px)"
    shot(page, "server-add-phone")


@pytest.mark.parametrize("viewport", ["wide", "phone"])
def test_the_sns_topic_shows_for_amazon_ses_only(open_page, mia, acme, shot, viewport):
    """The topic an SES server takes notifications from is on its page, under the webhook
    settings, only while Amazon SES is the provider; an admin empties it to move topics."""
    from mailroom.outgoing.models import MailServer
    from tests.browser.conftest import WIDE

    topic = "arn:aws:sns:eu-west-1:123456789012:ses-feedback"
    server = MailServer.objects.create(
        company=acme, name="Amazon SES", host="email-smtp.eu-west-1.amazonaws.com", port=587,
        security="starttls", auth="none", feedback_kind="ses", feedback_topic=topic,
        feedback_token="Q" * 43, active=False)  # a token with no hyphen to break at
    page = open_page(mia, WIDE if viewport == "wide" else PHONE)
    page.goto(reverse("admin:outgoing_mailserver_change", args=[server.pk]))
    field = page.locator("#id_feedback_topic")
    expect(field).to_have_value(topic)
    expect(field).to_be_visible()
    field.scroll_into_view_if_needed()
    shot(page, "ses-topic")
    # the webhook address (a long random token) wraps: nothing widens the page
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.select_option("#id_feedback_kind", "mailgun")
    expect(field).to_be_hidden()
