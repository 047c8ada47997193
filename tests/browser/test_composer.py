"""The composer in chromium: recipients picked from an autocomplete and typed in as chips, a
red line for a bad address, errors brought into view and focus, the preview of unsaved edits,
the mass page that cannot send twice, and @-mentions in the chatter — at 1280 and 390 px."""

from __future__ import annotations

import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from playwright.sync_api import expect

from mailroom.business.crm.models import Lead
from mailroom.chatter import services as chatter
from mailroom.contacts.models import Partner
from mailroom.outgoing.models import OutgoingMail
from mailroom.templating import services
from mailroom.templating.models import EmailTemplate

from .conftest import PHONE, WIDE

pytestmark = pytest.mark.browser


@pytest.fixture
def lead_template(acme, tess):
    return services.save_template(EmailTemplate(
        company=acme, name="Lead follow-up", record_type="crm.lead", default_for="lead_followup",
        partner_to="{{ object.partner.id }}", subject="About {{ object.name }}",
        body_html="<p>Hello {{ object.partner.name }}, thanks for your interest.</p>"),
        actor=tess)


def wait_for_editor(page, field_id):
    """TinyMCE registers an editor before it has loaded the textarea: content set before
    `initialized` is overwritten by the textarea's."""
    page.wait_for_function(
        f"window.tinymce && tinymce.get('{field_id}') && tinymce.get('{field_id}').initialized")


def compose_url(record) -> str:
    return reverse("templating:compose",
                   args=[ContentType.objects.get_for_model(record).pk, record.pk])


@pytest.mark.parametrize("viewport", [WIDE, PHONE], ids=["1280", "390"])
def test_autocomplete_adds_a_contact_and_a_new_address(open_page, bob, acme, lead,
                                                        lead_template, shot, viewport):
    Partner.objects.create(company=acme, name="Grace Hopper", email="grace@client.example")
    olga = Partner.objects.create(company=acme, name="Olga Ops", email="olga@client.example")
    chatter.follow(lead, olga, actor=bob)
    page = open_page(bob, viewport=viewport)
    page.goto(compose_url(lead))
    to = page.locator('[data-picker][data-kind="to"]')
    expect(to.locator("[data-chip]")).to_have_count(1)  # the template's contact, Ada
    suggestions = page.locator("#follower-suggestions")
    expect(suggestions).to_contain_text("Olga Ops")  # followers, one click away
    shot(page, "followers")
    suggestions.get_by_role("button", name="Olga Ops").click()
    expect(to.locator("[data-chip]")).to_have_count(2)
    expect(suggestions).to_be_hidden()
    to.locator(f'[data-chip="p{olga.pk}"] [data-remove]').click()
    expect(suggestions).to_be_visible()
    expect(to.locator("[data-chip]")).to_have_count(1)
    page.fill("#recipients-input", "grac")
    option = page.locator("#recipients-input-list [role=option]").first
    expect(option).to_contain_text("Grace Hopper")
    option.click()
    expect(to.locator("[data-chip]")).to_have_count(2)
    page.fill("#recipients-input", "new.person@client.example")
    page.keyboard.press("Enter")
    expect(to.locator("[data-chip]")).to_have_count(3)
    expect(to).to_contain_text("new.person@client.example")
    to.locator("[data-chip]").nth(0).locator("[data-remove]").click()
    expect(to.locator("[data-chip]")).to_have_count(2)  # Ada removed again
    shot(page, "composer")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    page.click("#composer-send")
    expect(page.locator("#chatter-timeline")).to_contain_text("About Big deal")
    mail = OutgoingMail.objects.get()
    assert sorted(r.address for r in mail.recipients.all()) == [
        "grace@client.example", "new.person@client.example"]


def test_an_invalid_address_is_a_red_line_and_stops_the_send(open_page, bob, lead,
                                                             lead_template, shot):
    page = open_page(bob)
    page.goto(compose_url(lead))
    page.fill("#recipients-input", "not-an-address")
    page.keyboard.press("Enter")
    error = page.locator("#recipients-input-error")
    expect(error).to_be_visible()
    expect(error).to_have_text("“not-an-address” is not a valid email address.")
    assert page.eval_on_selector("#recipients-input-error", "e => getComputedStyle(e).color") \
        == "rgb(220, 38, 38)"
    expect(page.locator("#recipients-input")).to_have_attribute("aria-invalid", "true")
    shot(page, "invalid-address")
    page.click("#composer-send")
    expect(page.locator("#recipients-input")).to_be_focused()
    assert not OutgoingMail.objects.exists()


@pytest.mark.parametrize("viewport", [WIDE, PHONE], ids=["1280", "390"])
def test_errors_are_shown_at_the_top_scrolled_into_view_and_focused(open_page, bob, lead,
                                                                    lead_template, shot,
                                                                    viewport):
    page = open_page(bob, viewport=viewport)
    page.goto(compose_url(lead))
    expect(page.locator("#schedule-field")).to_be_hidden()
    page.click("label:has(#when-later)")
    expect(page.locator("#schedule-field")).to_be_visible()  # only when scheduling
    page.fill("#id_subject", "")
    page.locator("#composer-send").scroll_into_view_if_needed()
    page.click("#composer-send")  # no date for the schedule, no subject
    summary = page.locator("#composer-errors")
    expect(summary).to_be_visible()
    expect(summary).to_contain_text("Choose when to send.")
    expect(summary).to_be_focused()
    expect(summary).to_be_in_viewport()
    shot(page, "errors")
    assert not OutgoingMail.objects.exists()


def test_preview_shows_the_unsaved_edits(open_page, bob, lead, lead_template, shot):
    page = open_page(bob)
    page.goto(compose_url(lead))
    page.fill("#id_subject", "A subject typed just now")
    wait_for_editor(page, "id_body")
    page.evaluate("tinymce.get('id_body').setContent('<p>Words still in the editor</p>')")
    page.click("#composer-preview-button")
    expect(page.locator("#preview-subject")).to_have_text("A subject typed just now")
    frame = page.frame_locator("#preview-frame")
    expect(frame.locator("body")).to_contain_text("Words still in the editor")
    shot(page, "preview")
    assert not OutgoingMail.objects.exists()


def test_template_editor_preview_shows_the_unsaved_edits(open_page, tess, lead, lead_template):
    page = open_page(tess)
    page.goto(reverse("admin:templating_emailtemplate_change", args=[lead_template.pk]))
    page.fill("#id_subject", "Unsaved {{ object.name }}")
    wait_for_editor(page, "id_body_html")
    page.evaluate("tinymce.get('id_body_html').setContent('<p>Not saved yet</p>')")
    page.select_option("#preview-record", str(lead.pk))
    page.click("#preview-button")
    expect(page.locator("#preview-subject")).to_have_text("Unsaved Big deal")
    expect(page.frame_locator("#preview-frame").locator("body")).to_contain_text(
        "Not saved yet")


@pytest.mark.parametrize("viewport", [WIDE, PHONE], ids=["1280", "390"])
def test_mass_page_lists_skips_and_cannot_send_twice(open_page, bob, acme, customer,
                                                     lead_template, shot, viewport):
    nomail = Partner.objects.create(company=acme, name="No Mail")
    Lead.objects.create(company=acme, name="Good one", partner=customer)
    Lead.objects.create(company=acme, name="Nobody", partner=nomail)
    page = open_page(bob, viewport=viewport)
    page.goto(reverse("admin:crm_lead_changelist"))
    page.locator("#action-toggle").check(force=True)
    page.select_option("select[name=action]", "send_email")
    page.locator("button[name=index]").click()
    table = page.locator("#mass-recipients")
    expect(table).to_contain_text("Nobody")
    expect(table.locator("tr", has_text="Nobody")).to_contain_text("No address")
    expect(page.frame_locator("#preview-frame").locator("body")).to_contain_text("Hello Ada")
    expect(page.locator("#mass-start")).to_contain_text("Send 1 email")
    shot(page, "mass")
    page.click("#mass-start")
    expect(page.locator("#mass-status")).to_contain_text("Done: 2 of 2")
    expect(page.locator("#mass-start")).to_be_disabled()
    expect(page.locator("#mass-errors")).to_contain_text("Nobody: skipped")
    shot(page, "mass-done")
    page.reload()  # the browser posts the action again: the same batch, shown as sent
    expect(page.locator("#mass-start")).to_be_disabled()
    expect(page.locator("#mass-already")).to_contain_text("Already sent: 1 email")
    assert OutgoingMail.objects.count() == 1


def test_mentions_autocomplete_in_the_chatter(open_page, bob, alice, lead):
    page = open_page(bob)
    page.goto(reverse("admin:crm_lead_change", args=[lead.pk]))
    page.get_by_role("button", name="Log note").click()
    # Alpine shows the composer and focuses it on its next tick; typing before that
    # sends the first key to the page, as it would for a person typing that fast
    expect(page.locator("#chatter-body")).to_be_focused()
    page.locator("#chatter-body").press_sequentially("Please check @ali")
    option = page.locator("#chatter-body-mentions [role=option]").first
    expect(option).to_contain_text("@alice")
    page.keyboard.press("Enter")
    expect(page.locator("#chatter-body")).to_have_value("Please check @alice ")


@pytest.mark.parametrize("viewport", [WIDE, PHONE], ids=["1280", "390"])
def test_a_large_selection_is_sent_by_the_worker_and_the_page_follows_it(
        open_page, bob, acme, lead_template, shot, viewport):
    from mailroom.templating import mass_engine

    for n in range(25):
        partner = Partner.objects.create(company=acme, name=f"Person {n}",
                                         email=f"p{n}@client.example")
        Lead.objects.create(company=acme, name=f"Lead {n}", partner=partner)
    page = open_page(bob, viewport=viewport)
    page.goto(reverse("admin:crm_lead_changelist"))
    page.locator("#action-toggle").check(force=True)
    page.select_option("select[name=action]", "send_email")
    page.locator("button[name=index]").click()
    expect(page.locator("#mass-start")).to_contain_text("Send 25 emails")
    page.click("#mass-start")
    expect(page.locator("#mass-status")).to_contain_text("Waiting for a worker")
    expect(page.locator("#mass-cancel")).to_be_visible()
    shot(page, "mass-waiting")
    assert mass_engine.mass_step("browser-worker") is True  # the worker, as `mailroom worker`
    expect(page.locator("#mass-status")).to_contain_text("Done: 25 mails queued")
    expect(page.locator("#mass-start")).to_be_disabled()
    expect(page.locator("#mass-cancel")).to_have_count(0)
    shot(page, "mass-worker-done")
    assert OutgoingMail.objects.filter(purpose="bulk").count() == 25
