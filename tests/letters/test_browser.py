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


def test_send_invoices_by_post_from_the_list_with_a_progress_bar(open_page, shot, acme, bob,
                                                                 invoice):
    import datetime
    from decimal import Decimal

    from mailroom.business.invoicing import services as invoicing
    from mailroom.business.invoicing.models import Invoice
    from mailroom.contacts.models import Partner

    nowhere = Partner.objects.create(company=acme, name="No Zip GmbH", street="Hauptstr. 1",
                                     city="Berlin", country="DE")
    draft = invoicing.save_invoice(Invoice(company=acme, partner=nowhere, user=bob,
                                           invoice_date=datetime.date(2026, 11, 25)), actor=bob)
    invoicing.set_lines(draft, [{"description": "Audit", "quantity": 1,
                                 "price_unit": Decimal("50")}], actor=bob)
    page = open_page(bob)
    page.goto(reverse("admin:invoicing_invoice_changelist"))
    page.locator("#action-toggle").check(force=True)
    page.select_option("select[name=action]", "send_by_post")
    page.locator("button[name=index]").click()
    table = page.locator("#letters-mass")
    expect(table.locator("tr", has_text="No Zip GmbH")).to_contain_text("has no postcode (ZIP)")
    expect(page.locator("#mass-start")).to_contain_text("Send 1 letter")
    page.click("#mass-start")
    expect(page.locator("#mass-status")).to_contain_text("Done: 1 of 1")
    expect(page.locator("#mass-start")).to_be_disabled()
    expect(page.locator(f"#result-{invoice.pk}")).to_contain_text("Queued")
    shot(page, "mass-done")
    assert list(Letter.objects.values_list("object_id", flat=True)) == [invoice.pk]
