"""The inbound screens in a real browser: a Mail Manager reprocesses a quarantined message
and tests an address, seeing the router's trace with the deciding rule."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from mailroom.incoming.models import InboundMail
from tests.browser.conftest import PHONE
from tests.incoming.ui.conftest import stored_mail

pytestmark = pytest.mark.browser

LOG = reverse("admin:incoming_inboundmail_changelist")


@pytest.fixture
def artifacts(tmp_path) -> Path:
    folder = Path(os.environ.get("MAILROOM_ARTIFACTS") or tmp_path) / "inbound"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def domain(acme):
    from mailroom.routing import services
    from mailroom.routing.models import AliasDomain

    domain = services.save_alias_domain(AliasDomain(company=acme, name="acme.test"), actor=None)
    services.ensure_default_aliases(domain)
    return domain


@pytest.fixture
def quarantined(acme):
    broken = stored_mail(acme, state="quarantined", subject="Printer on fire",
                         from_address="ada@client.example",
                         error="ValueError: the parser tripped on line 3",
                         trace=[{"rule": "alias", "note": "boom", "decision": "quarantined"}])
    other = stored_mail(acme, state="quarantined", subject="Second broken one",
                        from_address="zoe@other.example", error="Routing took too long.")
    stored_mail(acme, state="done", subject="Routed fine", decision="posted")
    return broken, other


def test_manager_reprocesses_from_the_quarantine(open_page, mia, quarantined, artifacts):
    broken, other = quarantined
    page = open_page(mia)
    page.goto(LOG)
    # the sidebar's Quarantine entry (with its count) opens the filtered log
    quarantine_link = page.locator("a[href$='?state__exact=quarantined']").first
    expect(quarantine_link).to_contain_text("2")  # the count badge
    page.screenshot(path=str(artifacts / "log.png"), full_page=True)
    page.goto(quarantine_link.get_attribute("href"))  # the sidebar may be folded away
    expect(page.locator("h1, #content").first).to_be_visible()
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("#result_list")).to_contain_text("the parser tripped on line 3")
    page.screenshot(path=str(artifacts / "quarantine.png"), full_page=True)
    page.locator(f"input.action-select[value='{broken.pk}']").check()
    page.locator("select[name=action]").select_option("reprocess_selected")
    page.locator("button[name=index]").first.click()
    expect(page.get_by_text("Sent back to the router: 1 message.")).to_be_visible()
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    page.screenshot(path=str(artifacts / "reprocessed.png"), full_page=True)
    broken.refresh_from_db()
    assert broken.state == InboundMail.State.RECEIVED
    # the detail page's own button
    page.goto(reverse("admin:incoming_inboundmail_change", args=[other.pk]))
    expect(page.locator("#inbound-error")).to_contain_text("Routing took too long.")
    page.locator("#reprocess").click()
    expect(page.get_by_text("Sent back to the router: it is routed again")).to_be_visible()
    other.refresh_from_db()
    assert other.state == InboundMail.State.RECEIVED


def test_test_an_address_shows_the_trace(open_page, mia, domain, artifacts):
    page = open_page(mia)
    page.goto(reverse("incoming:test_address"))
    page.locator("#id_sender").fill("ada@client.example")
    page.locator("#id_recipient").fill("support@acme.test")
    page.locator("#run-test").click()
    trace = page.locator("#test-trace")
    expect(trace).to_be_visible()
    expect(trace.locator("tr[data-deciding=true]")).to_contain_text("Created a record")
    expect(page.locator("#test-verdict")).to_contain_text("Created a record")
    page.screenshot(path=str(artifacts / "test-address.png"), full_page=True)
    page.locator("#id_recipient").fill("nobody@acme.test")
    page.locator("#run-test").click()
    expect(page.locator("#test-verdict")).to_contain_text("Refused")
    expect(page.locator("#test-trace tr[data-deciding=true]")).to_have_attribute(
        "data-rule", "fallback")


def test_test_an_address_on_a_phone(open_page, bob, domain, artifacts):
    page = open_page(bob, viewport=PHONE)
    page.goto(reverse("incoming:test_address"))
    page.locator("#id_sender").fill("ada@client.example")
    page.locator("#id_recipient").fill("sales@acme.test")
    page.locator("#run-test").click()
    expect(page.locator("#test-trace")).to_contain_text("Lead")
    page.screenshot(path=str(artifacts / "test-address-phone.png"), full_page=True)
