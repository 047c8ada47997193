"""The preference centre in a real browser, without signing in, at 390 px and 1280 px: the
lists with their checkboxes, save, unsubscribe from all, and the confirmation line; nothing
overflows the phone's width (screenshots in artifacts/)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from mailroom.campaigns import services
from mailroom.campaigns.models import MailingList, Subscription, Suppression
from tests.browser import conftest as browser_fixtures
from tests.campaigns.test_unsubscribe import make_campaign, make_trace, page_path, token_for

# the browser package's fixtures, shared (a conftest's fixtures reach only its own package)
PHONE, WIDE = browser_fixtures.PHONE, browser_fixtures.WIDE

pytestmark = pytest.mark.browser

Status = Subscription.Status


@pytest.fixture
def page_url(acme, mia, customer):
    acme.primary_color = "#0f766e"
    acme.save(update_fields=["primary_color"])
    newsletter = services.save_list(MailingList(
        company=acme, name="Newsletter", description="Our news and offers, every two weeks"),
        actor=mia)
    services.save_list(MailingList(company=acme, name="Product news", public=True,
                                   description="New products, once a month"), actor=mia)
    services.save_list(MailingList(company=acme, name="Events in Lyon", public=True),
                       actor=mia)
    services.subscribe(newsletter, customer, actor=mia, consent_how="Shop checkout")
    trace = make_trace(make_campaign(acme, [newsletter]), customer, lang="en_GB")
    return page_path(token_for(trace))


def _no_horizontal_overflow(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


@pytest.mark.parametrize("viewport", [PHONE, WIDE], ids=["phone", "wide"])
def test_choose_lists_then_unsubscribe_from_all(open_page, shot, page_url, customer, viewport):
    page = open_page(viewport=viewport)  # nobody signed in: the token is the key
    page.goto(page_url)
    expect(page.get_by_role("heading", name="Your email preferences")).to_be_visible()
    expect(page.locator(".who")).to_contain_text("ada@client.example")
    expect(page.locator(".company")).to_have_text("Acme Corp")
    newsletter = page.get_by_role("checkbox", name="Newsletter")
    product_news = page.get_by_role("checkbox", name="Product news")
    expect(newsletter).to_be_checked()
    expect(product_news).not_to_be_checked()
    expect(page.locator(".tag")).to_have_count(1)  # "You got this email through this list"
    expect(page.get_by_role("button", name="Unsubscribe from “Newsletter”")).to_be_visible()
    _no_horizontal_overflow(page)
    shot(page, "start")

    product_news.check()
    newsletter.uncheck()
    page.get_by_role("button", name="Save my choices").click()
    outcome = page.get_by_role("status")
    expect(outcome).to_contain_text("You are subscribed to “Product news”.")
    expect(outcome).to_contain_text("You are unsubscribed from “Newsletter”.")
    expect(page.get_by_role("checkbox", name="Product news")).to_be_checked()
    expect(page.get_by_role("checkbox", name="Newsletter")).not_to_be_checked()
    _no_horizontal_overflow(page)
    shot(page, "saved")
    joined = Subscription.objects.get(mailing_list__name="Product news", partner=customer)
    assert joined.status == Status.SUBSCRIBED and joined.consent_ip == "127.0.0.1"

    page.get_by_role("button", name="Unsubscribe from all").click()
    expect(page.get_by_role("status")).to_contain_text("unsubscribed from all mailings of "
                                                       "Acme Corp")
    expect(page.locator("input[type=checkbox]:checked")).to_have_count(0)
    shot(page, "unsubscribed-all")
    assert Suppression.objects.filter(email="ada@client.example",
                                      reason=Suppression.Reason.UNSUBSCRIBED).exists()
    # the brand colour frames the card; the buttons are thumb-sized on a phone
    assert page.evaluate("getComputedStyle(document.querySelector('.card'))"
                         ".borderTopColor") == "rgb(15, 118, 110)"
    box = page.get_by_role("button", name="Unsubscribe from all").bounding_box()
    assert box["height"] >= 44
    if viewport is PHONE:
        assert box["width"] > 300  # full width on a phone
