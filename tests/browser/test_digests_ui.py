"""Digests in chromium: the form at desktop and phone widths (KPIs picked under their app's
heading, recipients of the company), saved through the service, then the preview of what a
recipient gets, in a sandboxed frame."""

from __future__ import annotations

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from mailroom.core import kpis
from mailroom.core.kpis import Kpi, Unit
from mailroom.digests import prefs, views
from mailroom.digests.models import Digest
from tests.browser.conftest import PHONE, WIDE

pytestmark = pytest.mark.browser


@pytest.fixture
def extra_kpi():
    kpi = Kpi(key="test.invoiced", group="Invoicing", label="Invoiced amount",
              unit=Unit.MONEY, compute=lambda company, start, end: 1234,
              permission="invoicing.view_invoice",
              description="Invoices issued in the period, before tax")
    kpis._REGISTRY[kpi.key] = kpi
    yield kpi
    kpis._REGISTRY.pop(kpi.key, None)


@pytest.mark.parametrize("viewport", [WIDE, PHONE], ids=["wide", "phone"])
def test_create_a_digest_and_preview_it(open_page, acme, alice, bob, extra_kpi, shot,
                                        viewport):
    views.register_navigation()
    page = open_page(alice, viewport)
    page.goto(reverse("admin:digests_digest_add"))
    page.fill("#id_name", "Monday pulse")
    page.select_option("#id_periodicity", "weekly")
    picker = page.locator("#id_kpis")
    expect(picker.locator("legend", has_text="CRM")).to_be_visible()
    expect(picker).to_contain_text("Invoices issued in the period, before tax")
    picker.get_by_label("New leads").check()
    picker.get_by_label("Invoiced amount").check()
    recipients = page.locator("#id_recipients")
    recipients.get_by_label("Bob").check()
    recipients.get_by_label("Alice").check()
    shot(page, "form")
    page.locator("button[name='_continue']").click()
    expect(page.locator("#digest-actions")).to_be_visible()
    digest = Digest.objects.get(name="Monday pulse")
    assert digest.kpis == ["crm.new_leads", "test.invoiced"]
    expect(page.locator("#chatter")).to_be_visible()
    shot(page, "change")
    page.locator("#digest-preview").click()
    expect(page.locator("#preview-subject")).to_contain_text("Monday pulse")
    page.select_option("#preview-user", str(bob.pk))
    expect(page.locator("#preview-to")).to_contain_text("Bob")
    frame = page.frame_locator("#preview-frame")
    expect(frame.locator("body")).to_contain_text("New leads")
    assert page.locator("#preview-frame").get_attribute("sandbox") == ""
    shot(page, "preview")
    page.goto(reverse("admin:digests_digest_changelist"))
    expect(page.locator("#result_list")).to_contain_text("Monday pulse")
    shot(page, "list")


def test_my_digests_in_preferences(open_page, acme, alice, bob, shot):
    from tests.digests.conftest import make_digest

    prefs.register_preferences()
    make_digest(acme, recipients=[bob])
    make_digest(acme, name="Monthly numbers", periodicity="monthly", recipients=[alice])
    page = open_page(bob, PHONE)
    page.goto(reverse("core:preferences"))
    section = page.locator("#my-digests")
    expect(section).to_contain_text("Weekly pulse")
    section.get_by_role("button", name="Subscribe to Monthly numbers").click()
    expect(page.locator("#my-digests")).to_contain_text("Monthly numbers")
    expect(page.get_by_role("button", name="Unsubscribe from Monthly numbers")).to_be_visible()
    shot(page, "prefs")
