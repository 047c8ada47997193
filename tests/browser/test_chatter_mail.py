"""The chatter that talks, in chromium: Send message reaches the follower at a real SMTP peer
and the hub, the message shows who it reached, and the inbox bell counts news without a
reload, on a desktop and on a 390 px phone."""

from __future__ import annotations

import email
import email.policy

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from mailroom.chatter.services import follow, post_message
from mailroom.contacts.services import partner_for_user
from mailroom.outgoing.models import MailServer, OutgoingMail
from mailroom.outgoing.sending.engine import Sender
from mailroom.routing.models import AliasDomain
from tests.browser.conftest import PHONE
from tests.outgoing import smtp_peer

sink = smtp_peer.sink
pytestmark = pytest.mark.browser


@pytest.fixture
def relay(acme, sink):
    AliasDomain.objects.create(company=acme, name="acme.example")
    return MailServer.objects.create(company=acme, name="sink", host="127.0.0.1",
                                     port=sink.port, security="none", auth="none")


def send_all() -> None:
    sender = Sender("browser", step_seconds=0, timeout=5)
    try:
        sender.run_once()
    finally:
        sender.close()


def test_send_message_reaches_the_follower_the_hub_and_shows_who_it_reached(
        open_page, bob, lead, customer, relay, sink, shot):
    follow(lead, customer, actor=bob)
    page = open_page(bob)
    page.goto(reverse("admin:crm_lead_change", args=[lead.pk]))
    page.get_by_role("button", name="Send message").click()
    expect(page.locator("#chatter-recipients")).to_contain_text("Ada Lovelace")
    page.locator("#chatter-body").fill("Your 40 licences are ready.")
    page.locator("#chatter-composer button[type=submit]").click()
    entry = page.locator(".chatter-entry", has_text="Your 40 licences are ready.")
    expect(entry.locator(".chatter-notified-summary")).to_contain_text("Notified 1")
    send_all()
    [received] = sink.messages
    head = email.message_from_bytes(received.data, policy=email.policy.default)
    assert head["To"] == "Ada Lovelace <ada@client.example>"
    assert "Your 40 licences are ready." in head.get_body(("html",)).get_content()
    page.reload()
    entry = page.locator(".chatter-entry", has_text="Your 40 licences are ready.")
    entry.locator(".chatter-notified-summary").click()
    expect(entry.locator(".chatter-notified-item")).to_contain_text("emailed")
    shot(page, "record")
    mail = OutgoingMail.objects.get(chatter_message__isnull=False, state="sent")
    page.goto(reverse("admin:outgoing_outgoingmail_changelist"))
    expect(page.locator(f"#result_list a[href$='/{mail.pk}/change/']").first).to_be_visible()


@pytest.mark.parametrize("viewport", ["wide", "phone"])
def test_the_bell_counts_news_without_a_reload_and_the_inbox_marks_read(
        open_page, settings, alice, bob, acme, lead, shot, viewport):
    settings.MAILROOM_INBOX_POLL_SECONDS = 1
    alice.notify_by = "inbox"
    alice.save()
    follow(lead, partner_for_user(alice, acme), actor=bob)
    page = open_page(alice, **({"viewport": PHONE} if viewport == "phone" else {}))
    page.goto(reverse("chatter:inbox"))
    expect(page.locator("#inbox-list")).to_contain_text("Nothing here yet")
    expect(page.locator("#inbox-count")).to_have_count(0)
    post_message(lead, actor=bob, body_text="Can you call Ada back today?")
    expect(page.locator("#inbox-count")).to_have_text("1")  # polled, no reload
    expect(page.locator("#inbox-list")).to_contain_text("Can you call Ada back today?")
    shot(page, viewport)
    if viewport == "phone":
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the inbox is {width}px wide on a 390 px phone"
    page.locator(".mr-inbox-mark").first.click()
    expect(page.locator("#inbox-count")).to_have_count(0)
    expect(page.locator(".mr-inbox-item.is-unread")).to_have_count(0)
    # the list is polled every second here and may be swapped under the click on a busy
    # machine: Playwright retries, given the time
    page.locator(".mr-inbox-open").first.click(timeout=30_000)
    expect(page.locator(f"#chatter-message-{lead.chatter_messages.first().pk}, .chatter"
                        ).first).to_be_visible()


@pytest.mark.parametrize("width", [375, 800])
def test_the_notification_mail_reads_well_on_a_phone_and_a_desktop(
        browser, bob, alice, acme, lead, customer, relay, shot, width):
    alice.email = "alice@acme.example"  # .test is a name no contact may carry
    alice.save()
    follow(lead, customer, actor=bob)
    follow(lead, partner_for_user(alice, acme), actor=bob)
    message = post_message(lead, actor=bob, body_text="Your licences are ready.\n\n"
                           "A-very-long-reference-number-" * 3)
    mails = {m.recipients.get().address: m
             for m in OutgoingMail.objects.filter(chatter_message=message)}
    page = browser.new_page(viewport={"width": width, "height": 900})
    try:
        for address, who in (("ada@client.example", "customer"),
                             ("alice@acme.example", "team")):
            page.set_content(mails[address].body_html)
            scroll = page.evaluate("document.documentElement.scrollWidth")
            assert scroll <= width, f"the {who} copy is {scroll}px wide at {width}px"
            buttons = page.get_by_role("link", name="View lead")
            expect(buttons).to_have_count(1 if who == "team" else 0)
            expect(page.get_by_text("because you follow Lead: Big deal")).to_be_visible()
            shot(page, f"{who}-{width}")
    finally:
        page.close()
