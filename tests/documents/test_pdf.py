"""Quotation and invoice PDFs: content, locale formatting, access through the URL, no network."""

from __future__ import annotations

import datetime
import io
from decimal import Decimal

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from pypdf import PdfReader

from mailroom.business.invoicing import services as invoicing
from mailroom.business.invoicing.models import Invoice
from mailroom.business.sales import services as sales
from mailroom.business.sales.models import Quotation, Tax
from mailroom.contacts.models import Partner
from mailroom.documents import pdf
from mailroom.documents.links import document_url
from mailroom.documents.registry import document_for, has_document

D = Decimal
# A 1×1 red PNG: enough for WeasyPrint to embed an image.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c4944415408"
    "d763f8cfc0000003010100c9fe92ef0000000049454e44ae426082")


def text_of(content: bytes) -> str:
    """All pages' text, with the no-break spaces Babel puts in amounts made plain."""
    reader = PdfReader(io.BytesIO(content))
    text = "\n".join(page.extract_text() for page in reader.pages)
    return text.replace("\xa0", " ").replace("\u202f", " ")


@pytest.fixture
def vat(acme):
    return Tax.objects.create(company=acme, name="VAT 19%", percent=D("19"))


@pytest.fixture
def german(acme):
    return Partner.objects.create(company=acme, name="Grete Müller", email="grete@kunde.example",
                                  language="de_DE", street="Hauptstraße 5", zip="10115",
                                  city="Berlin", country="DE")


@pytest.fixture
def quotation(acme, bob, german, vat):
    draft = sales.save_quotation(
        Quotation(company=acme, partner=german, user=bob, date=datetime.date(2026, 3, 10),
                  validity_date=datetime.date(2026, 4, 9), note="Valid for 30 days."),
        actor=bob)
    return sales.set_lines(draft, [
        {"description": "Mailroom hosting, yearly", "quantity": 1, "price_unit": D("1000"),
         "tax_ids": [vat.pk]},
        {"description": "Onboarding workshop", "quantity": D("1.5"), "price_unit": D("156.33"),
         "tax_ids": [vat.pk]},
    ], actor=bob)


@pytest.fixture
def invoice(acme, bob, customer, vat):
    draft = invoicing.save_invoice(
        Invoice(company=acme, partner=customer, user=bob,
                invoice_date=datetime.date(2026, 3, 10)), actor=bob)
    invoicing.set_lines(draft, [
        {"description": "Support plan", "quantity": 2, "price_unit": D("617.25"),
         "tax_ids": [vat.pk]},
    ], actor=bob)
    return invoicing.post_invoice(draft, actor=bob)


# --- registry ------------------------------------------------------------------------------

def test_quotations_and_invoices_have_documents(quotation, invoice, lead):
    assert has_document(Quotation) and has_document(invoice)
    assert not has_document(lead)
    assert document_for(quotation).filename(quotation) == "Quotation S00001.pdf"
    assert document_for(invoice).filename(invoice) == "Invoice INV-2026-00001.pdf"
    assert document_for(quotation).title(quotation) == "Quotation"
    quotation.state = Quotation.State.SALE
    assert document_for(quotation).title(quotation) == "Sales order"


def test_render_pdf_refuses_a_record_without_document(lead):
    with pytest.raises(pdf.NoDocument):
        pdf.render_pdf(lead)


# --- content -------------------------------------------------------------------------------

def test_quotation_pdf_in_the_customers_language(quotation):
    # 1000.00 + 1.5 × 156.33 = 1234.50 untaxed; VAT 19 % = 190.00 + 44.56 = 234.56
    assert quotation.amount_untaxed == D("1234.50")
    document = pdf.render_pdf(quotation)
    assert document.filename == "Quotation S00001.pdf"
    assert document.mimetype == "application/pdf"
    assert document.content.startswith(b"%PDF")
    assert len(PdfReader(io.BytesIO(document.content)).pages) >= 1
    text = text_of(document.content)
    for expected in ("S00001", "Grete Müller", "Hauptstraße 5", "10115 Berlin",
                     "Mailroom hosting, yearly", "Onboarding workshop", "Acme Corp",
                     "1.234,50 €", "234,56 €", "1.469,06 €", "1,5", "10.03.2026",
                     "09.04.2026", "Valid for 30 days.", "1 / 1"):
        assert expected in text, expected


def test_lang_overrides_the_customer_language(quotation):
    text = text_of(pdf.render_pdf(quotation, lang="en_US").content)
    assert "€1,234.50" in text
    assert "Mar 10, 2026" in text


def test_company_language_when_the_customer_has_none(quotation, german):
    german.language = ""
    german.save()
    quotation.partner.language = ""
    text = text_of(pdf.render_pdf(quotation).content)  # acme writes French
    assert "1 234,50 €" in text
    assert "10 mars 2026" in text


def test_invoice_pdf_shows_totals_and_amount_due(invoice, bob):
    invoicing.register_payment(invoice, D("500"), actor=bob)
    invoice.refresh_from_db()
    document = pdf.render_pdf(invoice)
    assert document.filename == "Invoice INV-2026-00001.pdf"
    text = text_of(document.content)  # Ada writes British English
    for expected in ("Invoice", "INV/2026/00001", "Ada Lovelace", "Support plan",
                     "€1,234.50", "€234.56", "€1,469.06", "Paid", "€500.00", "Amount due",
                     "€969.06", "10 Mar 2026", "9 Apr 2026"):
        assert expected in text, expected


def test_draft_invoice_says_draft(acme, bob, customer):
    draft = invoicing.save_invoice(Invoice(company=acme, partner=customer), actor=bob)
    text = text_of(pdf.render_pdf(draft).content)
    assert "Draft invoice" in text
    assert "Amount due" not in text


def test_logo_and_colours_are_embedded(quotation, acme, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    acme.logo.save("acme.png", ContentFile(PNG), save=False)
    acme.primary_color = "#aa0000"
    acme.save()
    html = pdf.render_html(quotation)
    assert f'src="{pdf.logo_path(acme).as_uri()}"' in html
    assert "--primary: #aa0000" in html
    content = pdf.render_pdf(quotation).content
    assert b"/Subtype /Image" in content or b"/Subtype/Image" in content


def test_a_bad_colour_never_reaches_the_stylesheet(quotation, acme):
    acme.primary_color = "red;}*{"  # fits the column; only form validation would refuse it
    assert pdf.brand_colours(acme)["primary"] == pdf.DEFAULT_PRIMARY
    assert "red;}" not in pdf.render_html(quotation)


def test_notes_are_escaped_text(quotation, bob):
    quotation.note = '<img src="http://example.com/x.png"> & more'
    html = pdf.render_html(quotation)
    assert "&lt;img src=" in html
    assert '<img src="http' not in html


# --- no network ----------------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "http://example.com/x.png", "https://example.com/x.png", "ftp://example.com/x",
    "file:///etc/passwd", "data:image/png;base64,iVBORw0KGgo=", "file://remote.host/x.png",
])
def test_fetcher_refuses_everything_but_allowed_files(url):
    with pytest.raises(pdf.RefusedURL):
        pdf.LocalOnlyFetcher()(url)


def test_fetcher_serves_the_logo_and_assets(tmp_path):
    logo = tmp_path / "logo.png"
    logo.write_bytes(PNG)
    fetcher = pdf.LocalOnlyFetcher(files=(logo,))
    assert fetcher(logo.as_uri()).read() == PNG
    assert b"@page" in fetcher(pdf.STYLESHEET.as_uri()).read()
    with pytest.raises(pdf.RefusedURL):
        fetcher((tmp_path / "other.png").as_uri())
    with pytest.raises(pdf.RefusedURL):
        fetcher(f"{pdf.ASSETS_DIR.as_uri()}/../pdf.py")


def test_a_remote_image_in_the_html_is_not_fetched(monkeypatch):
    """Even if remote markup reached WeasyPrint, the fetcher refuses and rendering goes on."""
    calls = []
    monkeypatch.setattr("urllib.request.OpenerDirector.open",
                        lambda *args, **kwargs: calls.append(args) or None)
    from weasyprint import HTML

    html = HTML(string='<p>Hi</p><img src="http://example.com/x.png">',
                url_fetcher=pdf.LocalOnlyFetcher())
    assert html.write_pdf(font_config=pdf.FONT_CONFIG).startswith(b"%PDF")
    assert calls == []


# --- the view ------------------------------------------------------------------------------

def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_view_answers_the_pdf_inline(alice, quotation):
    response = login(alice).get(document_url(quotation))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'inline; filename="Quotation S00001.pdf"'
    assert response.content.startswith(b"%PDF")
    assert document_url(quotation) == f"/documents/sales.quotation/{quotation.pk}.pdf"


def test_view_downloads_on_request(alice, invoice):
    response = login(alice).get(document_url(invoice, download=True))
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    assert "Invoice INV-2026-00001.pdf" in response["Content-Disposition"]


def test_other_company_and_unknown_types_are_404(charlie, alice, quotation, lead):
    assert login(charlie).get(document_url(quotation)).status_code == 404
    response = login(alice).get(f"/documents/crm.lead/{lead.pk}.pdf")
    assert response.status_code == 404
    assert b"no printable document" in response.content
    assert login(alice).get("/documents/sales.quotation/999999.pdf").status_code == 404
    assert login(alice).get("/documents/nope/1.pdf").status_code == 404


def test_anonymous_is_sent_to_the_login(quotation):
    response = Client().get(document_url(quotation))
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_a_render_failure_is_a_plain_message(alice, quotation, monkeypatch):
    def broken(record, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("mailroom.documents.pdf.render_pdf", broken)
    response = login(alice).get(document_url(quotation))
    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/plain")
    assert b"boom" not in response.content


def test_change_pages_link_the_pdf(alice, quotation, invoice):
    client = login(alice)
    page = client.get(f"/sales/quotation/{quotation.pk}/change/").content.decode()
    assert f"/sales/quotation/{quotation.pk}/preview-pdf/" in page
    response = client.get(f"/sales/quotation/{quotation.pk}/preview-pdf/")
    assert response.status_code == 302
    assert response["Location"] == document_url(quotation)
    response = client.get(f"/invoicing/invoice/{invoice.pk}/download-pdf/")
    assert response["Location"] == document_url(invoice, download=True)


def test_weasyprint_is_imported_when_a_pdf_is_drawn_not_when_mailroom_starts():
    """The import costs about a second that every process paid at start (web, workers, the
    gateway, each command) though few ever draw a PDF."""
    import subprocess
    import sys

    code = ("import django, sys; django.setup(); import mailroom.urls, mailroom.letters.views; "
            "print('weasyprint' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.stdout.strip() == "False", done.stderr[-2000:]
