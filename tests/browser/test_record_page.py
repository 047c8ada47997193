"""The back office in a real browser: login, company switcher, record form and its chatter."""

from __future__ import annotations

import re

import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from playwright.sync_api import expect

from tests.browser.conftest import PHONE
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def lead_url(lead) -> str:
    return reverse("admin:crm_lead_change", args=[lead.pk])


def open_lead(page, lead):
    page.goto(lead_url(lead))
    expect(page.get_by_role("button", name="Send message")).to_be_visible()


def test_login_through_the_form(open_page, bob, shot):
    page = open_page()
    page.goto(reverse("admin:index"))
    expect(page).to_have_url(re.compile(r"/login/"))
    page.fill("#id_username", "bob")
    page.fill("#id_password", PASSWORD)
    page.locator("#login-form button[type=submit]").click()
    expect(page.locator("#company-current")).to_contain_text("Acme Corp")
    assert "/login/" not in page.url
    shot(page, "home")


def test_switch_company_from_the_header(open_page, dana, lead, globex_lead, shot):
    page = open_page(dana)
    page.goto(reverse("admin:crm_lead_changelist"))
    results = page.locator("#result_list")
    expect(results).to_contain_text("Big deal")
    expect(results).not_to_contain_text("Globex secret deal")
    page.select_option("#company-switcher-select", label="Globex")
    expect(page.locator("#result_list")).to_contain_text("Globex secret deal")
    expect(page.locator("#result_list")).not_to_contain_text("Big deal")
    expect(page.locator("#company-switcher-select option:checked")).to_have_text("Globex")
    expect(page.get_by_text("You are now working in Globex.")).to_be_visible()
    shot(page, "globex-leads")


def test_create_a_lead_with_the_add_form(open_page, bob, customer, shot):
    from mailroom.business.crm.models import Lead

    page = open_page(bob)
    page.goto(reverse("admin:crm_lead_add"))
    expect(page.locator("#chatter")).to_have_count(0)  # no chatter before the record exists
    page.fill("#id_name", "Browser-made deal")
    page.fill("#id_expected_revenue", "4200")
    page.locator("button[name=_continue]").click()
    expect(page.get_by_role("button", name="Send message")).to_be_visible()
    lead = Lead.objects.get(name="Browser-made deal")
    assert lead.company.name == "Acme Corp"  # preselected: the current company
    expect(page.locator("#chatter-timeline")).to_contain_text("Lead created")
    shot(page, "created")


def test_log_a_note_without_leaving_the_page(open_page, bob, lead, shot):
    from mailroom.chatter.models import Message

    page = open_page(bob)
    open_lead(page, lead)
    page.evaluate("window.__stillHere = 'yes'")
    page.get_by_role("button", name="Log note").click()
    page.get_by_role("button", name="Log", exact=True).click()  # empty: refused in place
    expect(page.locator(".chatter-composer .chatter-error")).to_contain_text("Write something")
    page.fill("#chatter-body", "Called Ada: demo on Tuesday.")
    page.get_by_role("button", name="Log", exact=True).click()
    first = page.locator("#chatter-timeline > li").first
    expect(first).to_contain_text("Called Ada: demo on Tuesday.")
    expect(first.locator(".chatter-badge")).to_have_text("note")
    expect(page.locator("#chatter-composer")).to_be_hidden()
    assert page.evaluate("window.__stillHere") == "yes"
    assert Message.objects.filter(message_type="note", body_html__contains="demo on Tuesday",
                                  author_user=bob).exists()
    shot(page, "note")


def test_upload_and_download_an_attachment(open_page, bob, lead, tmp_path, shot):
    page = open_page(bob)
    open_lead(page, lead)
    page.locator("summary", has_text="Attachments").click()
    expect(page.get_by_text("No files yet")).to_be_visible()
    payload = b"quote v2\n\x00\x01binary tail"
    page.set_input_files("#chatter-upload-files", files=[
        {"name": "quote.bin", "mimeType": "application/octet-stream", "buffer": payload}])
    chip = page.locator("#chatter-attachments .chatter-chip", has_text="quote.bin")
    expect(chip).to_be_visible()
    expect(page.locator("#chatter-attachment-count")).to_have_text("1")
    with page.expect_download() as info:
        chip.click()
    download = info.value
    assert download.suggested_filename == "quote.bin"
    assert open(download.path(), "rb").read() == payload
    shot(page, "attachments")


def test_other_company_gets_404(open_page, charlie, lead, live_server):
    page = open_page(charlie)
    response = page.request.get(live_server.url + lead_url(lead), max_redirects=0)
    page.goto(lead_url(lead))
    assert "Big deal" not in page.content()
    panel = reverse("chatter:panel",
                    args=[ContentType.objects.get_for_model(lead).pk, lead.pk])
    assert page.request.get(live_server.url + panel).status == 404
    assert response.status == 404


def test_phone_layout_has_no_horizontal_overflow(open_page, dana, lead, shot):
    from mailroom.chatter import services

    services.log_note(lead, actor=dana, body_text="A-very-long-unbroken-word-" * 8)
    page = open_page(dana, viewport=PHONE)
    open_lead(page, lead)
    page.get_by_role("button", name="Send message").click()
    page.locator("summary", has_text="Followers").click()
    page.locator("#chatter-follow-search").focus()
    page.locator("#chatter-partner-choices").get_by_role("button", name="Ada Lovelace").click()
    expect(page.locator("#chatter-followers .chatter-person-name")).to_have_text("Ada Lovelace")
    expect(page.locator("#chatter-follower-count")).to_have_text("1")
    expect(page.locator("#chatter-recipients")).to_contain_text(
        "Emailed to 1 follower: Ada Lovelace")
    width = page.evaluate("document.documentElement.scrollWidth")
    shot(page, "phone")
    assert width <= PHONE["width"], f"page is {width}px wide on a {PHONE['width']}px phone"
    page.goto(reverse("admin:crm_lead_changelist"))
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
