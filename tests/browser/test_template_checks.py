"""The template editor in chromium: an unknown placeholder is a red line under its field,
naming it and the nearest valid names, and nothing is saved."""

from __future__ import annotations

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from mailroom.templating.models import EmailTemplate

from .conftest import PHONE

pytestmark = pytest.mark.browser


def is_red(colour: str) -> bool:
    """rgb(220, 38, 38) or Tailwind 4's oklch(0.577 0.245 27.325)."""
    numbers = [float(p) for p in colour[colour.index("(") + 1:-1].replace(",", " ").split()[:3]]
    if colour.startswith("oklch"):
        _, chroma, hue = numbers
        return chroma > 0.1 and (hue < 40 or hue > 340)
    red, green, blue = numbers
    return red > 150 and green < 120 and blue < 120


def fill_form(page, subject: str) -> None:
    page.goto(reverse("admin:templating_emailtemplate_add"))
    page.fill("#id_name", "Lead hello")
    page.select_option("#id_record_type", "crm.lead")
    page.fill("#id_subject", subject)
    page.fill("#id_partner_to", "{{ object.partner.id }}")
    page.locator("button[name='_save'], input[name='_save']").first.click()


def test_an_unknown_placeholder_is_a_red_line_with_the_nearest_names(open_page, tess, shot):
    page = open_page(tess)
    fill_form(page, "Hello {{ object.partner.nam }}")
    error = page.get_by_text("‘object.partner.nam’ is not a field of leads.")
    expect(error).to_be_visible()
    expect(error).to_contain_text("Did you mean ‘object.partner.name’?")
    assert is_red(error.evaluate("node => getComputedStyle(node).color"))
    error.scroll_into_view_if_needed()
    shot(page, "wide")
    assert not EmailTemplate.objects.filter(name="Lead hello").exists()

    phone = open_page(tess, viewport=PHONE)
    fill_form(phone, "Hello {{ object.partner.nam }}")
    expect(phone.get_by_text("‘object.partner.nam’ is not a field of leads.")).to_be_visible()
    shot(phone, "phone")

    page.fill("#id_subject", "Hello {{ object.partner.name }}")
    page.locator("button[name='_save'], input[name='_save']").first.click()
    expect(page.get_by_text("‘object.partner.nam’")).to_have_count(0)
    assert EmailTemplate.objects.filter(name="Lead hello").exists()
