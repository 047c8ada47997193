"""The segment editor in a real browser: two conditions built from selects, the live count
following every change, all/any, then saved; screenshots at desktop and phone widths."""

from __future__ import annotations

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from mailroom.business.crm.models import Lead
from mailroom.campaigns import services
from mailroom.campaigns.campaign_models import Segment
from mailroom.contacts.models import Partner
from tests.browser import conftest as browser_fixtures

pytestmark = pytest.mark.browser


def settled(page):
    """htmx wires a swapped-in row up when it settles (it drops `htmx-added` then)."""
    expect(page.locator(".mr-seg-row.htmx-added, .mr-seg-row .htmx-added")).to_have_count(0)


@pytest.fixture
def audience(acme, mia, newsletter):
    ada, bea, cyd = (Partner.objects.create(company=acme, name=n, email=f"{n.lower()}@x.example")
                     for n in ("Ada", "Bea", "Cyd"))
    services.subscribe(newsletter, ada, actor=mia)
    services.subscribe(newsletter, bea, actor=mia)
    Lead.objects.create(company=acme, name="Printer deal", partner=bea, stage="won")
    Lead.objects.create(company=acme, name="Copier deal", partner=cyd, stage="won")
    return newsletter


@pytest.mark.parametrize("viewport", [browser_fixtures.WIDE, browser_fixtures.PHONE],
                         ids=["wide", "phone"])
def test_build_a_segment_with_two_conditions_and_watch_the_count(open_page, shot, mia,
                                                                 audience, viewport):
    page = open_page(mia, viewport=viewport)
    page.goto(reverse("campaigns:segment_new"))
    count = page.locator("#segment-count")
    expect(count).to_contain_text("Choose mailing list")  # the first row waits for a list
    page.get_by_label("Name", exact=True).fill("Newsletter buyers")
    page.locator("select[name='c0_value']").select_option(label="Newsletter")
    expect(count).to_contain_text("2 contacts")
    expect(count).to_contain_text("Bea")

    page.get_by_role("button", name="Add condition").click()
    expect(page.locator(".mr-seg-row")).to_have_count(2)
    settled(page)
    page.locator("select[name='c1_field']").select_option(label="Leads")
    where = page.locator("select[name='c1_where']")
    expect(where).to_be_visible()
    settled(page)
    where.select_option(label="with stage…")
    expect(page.locator("select[name='c1_equals']")).to_be_visible()
    settled(page)
    page.locator("select[name='c1_equals']").select_option(label="Won")
    expect(count).to_contain_text("1 contact")
    expect(count).not_to_contain_text("Ada")

    page.get_by_label("any condition").check()
    expect(count).to_contain_text("3 contacts")
    shot(page, "editor")

    page.get_by_role("button", name="Save segment").click()
    expect(page.get_by_text("Segment “Newsletter buyers” saved.")).to_be_visible()
    segment = Segment.objects.get()
    assert segment.match == "any"
    assert segment.rules == [
        {"field": "list", "op": "subscribed", "value": audience.pk},
        {"field": "record:crm.lead", "op": "has", "value": {"where": "stage",
                                                            "equals": "won"}}]

    # removing a condition counts again without a reload
    page.locator(".mr-seg-row").nth(1).get_by_role("button",
                                                   name="Remove this condition").click()
    expect(count).to_contain_text("2 contacts")
    shot(page, "saved")

    # the list counts each saved segment once the page shows (the removal was not saved)
    page.goto(reverse("admin:campaigns_segment_changelist"))
    expect(page.locator("#result_list .mr-seg-lazy")).to_have_text("3")
    shot(page, "list")
