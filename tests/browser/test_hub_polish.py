"""The hub's and the alias form's polish in chromium, at 1280 and 390 px: why a mail was not
sent (in the list, the whole reason on hover), Cancel that asks first, a cancelled mail without
a retry promise; the alias form's default fields following the record type (htmx) and the
force-thread picker searching the company's records."""

from __future__ import annotations

import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from playwright.sync_api import expect

from mailroom.outgoing.models import FailureType, OutgoingRecipient, SendAttempt
from mailroom.routing.models import Alias
from tests.browser.conftest import PHONE, WIDE
from tests.browser.test_hub import make_mail
from tests.incoming.ui import conftest as incoming_ui

pytestmark = pytest.mark.browser
domain = incoming_ui.domain  # fixture: acme.test with its default aliases

HUB = reverse("admin:outgoing_outgoingmail_changelist")
GREYLISTED = ("The server refused the recipient boss@client.example for now, it will be "
              "retried: 451 4.7.1 Greylisted, please try again later")


@pytest.fixture
def deferred(acme, lead):
    mail = make_mail(acme, "Quote for the big deal", "boss@client.example", "deferred",
                     record=lead, failure_type=FailureType.REJECTED, attempt_count=1,
                     failure_reason=GREYLISTED)
    mail.recipients.update(status=OutgoingRecipient.Status.PENDING, smtp_code=451,
                           failure_type=FailureType.REJECTED, failure_reason=GREYLISTED)
    SendAttempt.objects.create(mail=mail, server_name="Relay", outcome="deferred",
                               smtp_code=451, smtp_reply=GREYLISTED, duration_ms=41)
    make_mail(acme, "Welcome aboard", "zoe@other.example", "outgoing")
    return mail


@pytest.mark.parametrize("viewport", [WIDE, PHONE], ids=["1280", "390"])
def test_the_hub_says_why_and_cancel_asks_first(open_page, mia, deferred, shot, viewport):
    page = open_page(mia, viewport=viewport)
    page.goto(HUB)
    cell = page.locator("#result_list .mr-failure")
    expect(cell).to_have_count(1)
    expect(cell).to_have_text("Rejected by the recipient's server")
    expect(cell).to_have_attribute("title", GREYLISTED)
    shot(page, "list")

    page.goto(reverse("admin:outgoing_outgoingmail_change", args=[deferred.pk]))
    expect(page.locator("#mail-attempt-count")).to_have_text("1")
    expect(page.locator("#mail-attempts tbody tr")).to_have_count(1)
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator("#mail-cancel h1")).to_have_text("Cancel this email?")
    shot(page, "confirm")
    deferred.refresh_from_db()
    assert deferred.state == "deferred"  # the page alone changed nothing
    page.get_by_role("link", name="No, keep it").click()
    expect(page.locator("#mail-detail h1")).to_have_text("Quote for the big deal")

    page.get_by_role("button", name="Cancel").click()
    page.get_by_role("button", name="Yes, cancel the email").click()
    expect(page.get_by_text("Cancelled: it will not be sent.")).to_be_visible()
    expect(page.locator("#mail-cancelled")).to_contain_text("Greylisted")
    expect(page.locator("#mail-recipients")).to_contain_text("Not sent (cancelled)")
    expect(page.locator("body")).not_to_contain_text("will be retried")
    shot(page, "cancelled")
    page.goto(HUB)
    expect(page.locator("#result_list .mr-failure")).to_have_attribute(
        "title", GREYLISTED.replace("for now, it will be retried", "temporarily"))
    deferred.refresh_from_db()
    assert deferred.state == "cancelled"


@pytest.mark.parametrize("viewport", [WIDE, PHONE], ids=["1280", "390"])
def test_alias_defaults_follow_the_record_type_and_the_thread_is_searched(
        open_page, mia, acme, lead, globex_lead, customer, domain, shot, viewport):
    alias = Alias.objects.get(domain=domain, local_part="support")
    page = open_page(mia, viewport=viewport)
    page.goto(reverse("admin:routing_alias_change", args=[alias.pk]))
    expect(page.locator("select[name=default__priority]")).to_be_visible()
    expect(page.locator("select[name=default__probability]")).to_have_count(0)
    shot(page, "ticket")

    # another record type: its own fields arrive without a reload
    page.locator("select[name=record_type]").select_option("crm.lead")
    expect(page.locator("input[name=default__probability]")).to_be_visible()
    page.locator("select[name=default__partner]").select_option(label="Ada Lovelace")
    page.locator("input[name=default__probability]").fill("40")

    # force thread: a lead found by searching its name, never another company's
    page.locator("select[name=thread_content_type]").select_option(label="Lead")
    page.locator("#id_thread_object_id + .select2").click()
    search = page.locator(".select2-search__field")
    search.fill("deal")
    options = page.locator(".select2-results__option")
    expect(options.filter(has_text="Big deal")).to_have_count(1)
    expect(options.filter(has_text="Globex secret deal")).to_have_count(0)
    # the typing's later search may still be under way ("Searching…"): its answer redraws
    # the list, and a click on the option it replaces chooses nothing
    expect(page.locator(".select2-results__option.loading-results")).to_have_count(0)
    shot(page, "picker")
    options.filter(has_text="Big deal").click()
    expect(page.locator("#select2-id_thread_object_id-container")).to_contain_text("Big deal")
    page.locator("[name=_continue]").click()
    expect(page.locator(".messagelist, #messages, body")).to_contain_text("was changed")
    alias.refresh_from_db()
    assert alias.record_type == "crm.lead"
    assert alias.defaults == {"partner": customer.pk, "probability": 40}
    assert alias.thread_content_type == ContentType.objects.get_for_model(lead)
    assert alias.thread_object_id == lead.pk
    expect(page.locator("#id_thread_object_id + .select2")).to_contain_text("Big deal")
    shot(page, "saved")
