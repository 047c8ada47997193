"""Send by Post in a real browser: the address preview and the price, the letter in the list
with its PDF; a contact without a postcode shows the red line and no Send button to press."""

from __future__ import annotations

import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from playwright.sync_api import expect

from mailroom.letters.models import Letter, PostalProvider
from tests.browser import conftest as browser_fixtures

# the browser package's fixtures, shared (a conftest's fixtures reach only its own package)
browser = browser_fixtures.browser
open_page = browser_fixtures.open_page
shot = browser_fixtures.shot

pytestmark = pytest.mark.browser


def send_url(record) -> str:
    return reverse("letters:send", args=[ContentType.objects.get_for_model(record).pk,
                                         record.pk])


def test_send_an_invoice_by_post_then_find_it_in_the_list(open_page, shot, acme, bob, invoice):
    PostalProvider.objects.create(company=acme, name="Print room", kind="local",
                                  settings={"price_per_letter": "1.20"})
    page = open_page(bob)
    page.goto(send_url(invoice))
    address = page.locator(".mr-letter-address")
    expect(address).to_contain_text("12 Rue de la Paix")
    expect(address).to_contain_text("75002 Paris")
    expect(page.locator(".mr-letter-price")).to_contain_text("1.20 EUR")
    expect(page.locator(".mr-red-line")).to_have_count(0)
    shot(page, "preview")
    page.get_by_role("button", name="Send by post").click()

    letter = Letter.objects.get()
    expect(page.get_by_text("is queued")).to_be_visible()
    shot(page, "detail")
    pdf_link = page.get_by_role("link", name="Open the PDF")
    expect(pdf_link).to_have_attribute("href", reverse("letters:letter_pdf", args=[letter.pk]))
    response = page.request.get(reverse("letters:letter_pdf", args=[letter.pk]))
    assert response.ok and response.body().startswith(b"%PDF")

    page.goto(reverse("admin:letters_letter_changelist"))
    expect(page.locator("#result_list")).to_contain_text("Ada Lovelace")
    expect(page.locator("#result_list")).to_contain_text("Queued")
    shot(page, "list")


def test_a_missing_postcode_is_a_red_line(open_page, shot, bob, invoice, customer):
    customer.zip = ""
    customer.save()
    page = open_page(bob)
    page.goto(send_url(invoice))
    expect(page.locator(".mr-red-line")).to_contain_text("has no postcode (ZIP)")
    expect(page.get_by_role("button", name="Send by post")).to_be_disabled()
    shot(page, "red-line")
