"""Templates and the composer in chromium: preview in a sandboxed iframe, composing from a
record into its chatter, and the final mail HTML at phone and desktop widths."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from mailroom.templating import services
from mailroom.templating.models import EmailTemplate

pytestmark = pytest.mark.browser


@pytest.fixture
def lead_template(acme, tess):
    return services.save_template(EmailTemplate(
        company=acme, name="Lead follow-up", record_type="crm.lead",
        partner_to="{{ object.partner.id }}", subject="About {{ object.name }}",
        body_html="<p>Hello {{ object.partner.name }}, thanks for your interest.</p>"),
        actor=tess)


@pytest.fixture
def artifacts(tmp_path) -> Path:
    folder = Path(os.environ.get("MAILROOM_ARTIFACTS") or tmp_path) / "templates"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_preview_a_template_on_a_record(open_page, tess, lead, lead_template, shot):
    page = open_page(tess)
    page.goto(reverse("admin:templating_emailtemplate_change", args=[lead_template.pk]))
    expect(page.locator("#placeholder-browser")).to_contain_text("object.partner.name")
    page.select_option("#preview-record", str(lead.pk))
    page.click("#preview-button")
    expect(page.locator("#preview-subject")).to_have_text("About Big deal")
    expect(page.locator("#preview-to")).to_contain_text("ada@client.example")
    frame = page.frame_locator("#preview-frame")
    expect(frame.locator("body")).to_contain_text("Hello Ada Lovelace")
    assert page.locator("#preview-frame").get_attribute("sandbox") == ""
    shot(page, "preview")


def test_compose_from_a_record_into_its_chatter(open_page, bob, lead, lead_template, shot):
    page = open_page(bob)
    page.goto(reverse("admin:crm_lead_change", args=[lead.pk]))
    page.click("#chatter-send-email")
    expect(page.locator("#composer-form")).to_be_visible()
    page.select_option("#id_template", str(lead_template.pk))
    expect(page.locator("#id_subject")).to_have_value("About Big deal")
    # the template's htmx swaps are all in before the subject is edited (one failed once in a
    # loaded run, not reproduced since: a late swap would put the template's subject back)
    page.wait_for_load_state("networkidle")
    page.fill("#id_subject", "About Big deal, edited")
    expect(page.locator("#id_subject")).to_have_value("About Big deal, edited")
    shot(page, "composer")
    # the origin taken before sending: read after, page.url may be the record's page already
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(page.url))
    page.click("#composer-send")
    expect(page).to_have_url(origin + reverse("admin:crm_lead_change", args=[lead.pk]))
    expect(page.locator("#chatter-timeline")).to_contain_text("About Big deal, edited")


@pytest.mark.parametrize("width", [375, 800])
def test_the_final_mail_fits_phone_and_desktop_widths(open_page, bob, lead, lead_template,
                                                      artifacts, width):
    mail = services.send_template(lead, lead_template, actor=bob)
    page = open_page(viewport={"width": width, "height": 900})
    page.set_content(mail.body_html)
    expect(page.locator("body")).to_contain_text("Hello Ada Lovelace")
    page.screenshot(path=str(artifacts / f"mail-{width}.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
