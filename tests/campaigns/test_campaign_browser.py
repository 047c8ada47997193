"""A campaign in a real browser: written in the editor with the audience counted live as
lists are ticked, tested, sent after the confirm step, its progress followed while the worker
queues it (the worker's step is run by the test between polls), then its page with figures
and traces — at desktop and phone widths."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from mailroom.campaigns import services, tracking
from mailroom.campaigns.engine import step
from mailroom.campaigns.models import Campaign, CampaignRecipient, MailingList
from mailroom.contacts.models import Partner
from mailroom.outgoing.models import OutgoingMail
from mailroom.routing.models import AliasDomain
from tests.browser.conftest import PHONE

# the browser package's fixtures, shared (a conftest's fixtures reach only its own package)

pytestmark = pytest.mark.browser


@pytest.fixture
def lists(acme, mia):
    AliasDomain.objects.create(company=acme, name="news.acme.example")
    newsletter = services.save_list(MailingList(company=acme, name="Newsletter"), actor=mia)
    staff = services.save_list(MailingList(company=acme, name="Staff"), actor=mia)
    people = {name: Partner.objects.create(company=acme, name=name,
                                           email=f"{name.lower()}@client.example")
              for name in ("Ada", "Bea", "Cyd")}
    for partner in people.values():
        services.subscribe(newsletter, partner, actor=mia)
    services.unsubscribe(newsletter.subscriptions.get(partner=people["Cyd"]), actor=mia)
    services.subscribe(staff, people["Bea"], actor=mia)
    return newsletter, staff


def test_write_test_send_and_follow_a_campaign(open_page, shot, mia, lists):
    newsletter, staff = lists
    page = open_page(mia)
    page.goto("/campaigns/campaign/add/")
    page.fill("#id_name", "Spring news")
    page.fill("#id_subject", "Hello {{ contact.first_name }}")
    page.fill("#id_email_from", "Acme <hello@news.acme.example>")
    page.wait_for_function("window.tinymce && tinymce.get('id_body_html')")
    page.evaluate("tinymce.get('id_body_html').setContent('<p>Dear {{ contact.name }}, "
                  "spring is here. <a href=\"https://acme.example/offer\">See the offer</a>"
                  "</p>')")
    audience = page.locator("#campaign-audience")
    expect(audience).to_contain_text("Choose one or more lists")
    page.locator(f"input[name=lists][value='{newsletter.pk}']").check()
    expect(audience).to_contain_text("2 recipients · 1 excluded (1 unsubscribed)")
    page.locator(f"input[name=exclude_lists][value='{staff.pk}']").check()
    expect(audience).to_contain_text("1 recipient ·")
    shot(page, "editor")
    page.locator("button[name=_save]").click()

    campaign = Campaign.objects.get()
    expect(page.locator("#result_list")).to_contain_text("Spring news")
    expect(page.locator("#result_list")).to_contain_text("Draft")
    page.get_by_role("link", name="Open page").click()
    expect(page.locator("#campaign-state")).to_have_text("Draft")
    preview = page.frame_locator("#campaign-preview iframe")
    expect(preview.locator("body")).to_contain_text("spring is here.")

    page.fill("#campaign-test-addresses", "me@example.com")
    page.get_by_role("button", name="Send test").click()
    expect(page.locator("#campaign-test")).to_contain_text("Test sent to me@example.com.")
    assert OutgoingMail.objects.filter(subject="[Test] Hello me").count() == 1
    shot(page, "draft")

    page.get_by_role("link", name="Send now…").click()
    expect(page.locator("#campaign-send-audience")).to_contain_text("1 recipient")
    shot(page, "confirm")
    page.get_by_role("button", name="Send to everyone now").click()
    expect(page.get_by_text("is on its way")).to_be_visible()
    expect(page.locator("#campaign-state")).to_have_text("Preparing")
    shot(page, "preparing")
    while step.campaigns_step("browser-worker"):
        pass
    # the poll notices the campaign is queued and reloads the page with its new buttons
    expect(page.locator("#campaign-state")).to_have_text("Sending")
    expect(page.locator("#campaign-progress-text")).to_contain_text("1 of 1 mail queued")
    expect(page.locator("#campaign-traces")).to_contain_text("ada@client.example")
    expect(page.locator("#campaign-exclusions")).to_contain_text("On an excluded list")
    expect(page.get_by_role("button", name="Pause")).to_be_visible()
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.SENDING and campaign.queued == 1
    shot(page, "sending")

    # Ada opens the mail and clicks its link: the figures, the chart and the link table
    ada = CampaignRecipient.objects.get(campaign=campaign, email="ada@client.example")
    tracking.record_open(campaign.company_id, ada.pk, user_agent="Thunderbird/128.0")
    tracking.record_click(campaign.company_id, ada.pk, campaign.links.get().pk)
    page.reload()
    expect(page.locator("[data-figure=opened]")).to_contain_text("1")
    expect(page.locator("#campaign-chart svg rect")).to_have_count(2)
    expect(page.locator("#campaign-links")).to_contain_text("https://acme.example/offer")
    shot(page, "stats")

    phone = open_page(mia, viewport=PHONE)
    phone.goto(f"/campaigns/c/{campaign.pk}/")
    expect(phone.locator("#campaign-traces")).to_contain_text("ada@client.example")
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"] + 1, f"the page scrolls sideways on a phone ({width}px)"
    shot(phone, "phone")
