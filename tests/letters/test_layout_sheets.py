"""Pages, sheets and blank backs: in duplex every document starts on a recto."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader
from weasyprint import HTML

from mailroom.letters.layout.generator import LetterLayoutError, LetterSpec, build
from mailroom.letters.layout.normalise import NormaliseError


def document(pages: int, label: str, size: str = "A4") -> bytes:
    body = "".join(f'<p style="break-after: page">{label} page {n}</p>'
                   for n in range(1, pages + 1))
    return HTML(string=f"<style>@page {{ size: {size}; margin: 20mm }}</style>{body}").write_pdf()


INVOICE = document(5, "Invoice")
TERMS = document(2, "Terms")


def spec(**options) -> LetterSpec:
    values = {"sender_name": "Acme Ltd", "sender_lines": ["1 High Street", "Leeds LS1 1AA"],
              "recipient_lines": ["Jane Doe", "2 Low Road", "York YO1 2BB"],
              "documents": [INVOICE, TERMS], "standard": "uk_dl", "cover_page": True,
              "duplex": True}
    values.update(options)
    return LetterSpec(**values)


def page_texts(pdf: bytes) -> list[str]:
    return [page.extract_text().strip() for page in PdfReader(io.BytesIO(pdf)).pages]


def test_invoice_and_terms_in_duplex_with_a_cover():
    built = build(spec())
    # cover, its blank back, invoice 1-5, blank back of page 5, terms 1-2
    assert built.pages == 10
    assert built.sheets == 5
    assert built.blank_pages == [2, 8]
    texts = page_texts(built.pdf)
    assert len(texts) == 10
    assert "Jane Doe" in texts[0]
    assert texts[1] == "" and texts[7] == ""
    assert [t for t in texts[2:7]] == [f"Invoice page {n}" for n in range(1, 6)]
    assert texts[8:] == ["Terms page 1", "Terms page 2"]
    # every document starts on a recto (an odd page number)
    assert texts.index("Invoice page 1") % 2 == 0 and texts.index("Terms page 1") % 2 == 0


def test_simplex_has_no_blank_pages():
    built = build(spec(duplex=False))
    assert (built.pages, built.sheets, built.blank_pages) == (8, 8, [])


def test_duplex_without_cover_page():
    built = build(spec(cover_page=False))
    assert (built.pages, built.sheets, built.blank_pages) == (8, 4, [6])
    assert page_texts(built.pdf)[0] == "Invoice page 1"


def test_an_odd_last_document_gets_no_trailing_blank():
    built = build(spec(documents=[TERMS, document(3, "Annex")]))
    # cover, blank, terms 1-2, annex 1-3
    assert (built.pages, built.sheets, built.blank_pages) == (7, 4, [2])


def test_even_documents_need_no_blank_between_them():
    built = build(spec(documents=[TERMS, TERMS]))
    assert (built.pages, built.sheets, built.blank_pages) == (6, 3, [2])


def test_nothing_to_print_is_refused():
    with pytest.raises(LetterLayoutError, match="nothing to print"):
        build(spec(documents=[], cover_page=False))


def test_a_broken_document_names_which_one():
    with pytest.raises(NormaliseError, match="^Document 2 could not be read"):
        build(spec(documents=[INVOICE, b"%PDF-1.7 this is not really a pdf"]))


def test_cover_only_letter():
    built = build(spec(documents=[], duplex=False))
    assert (built.pages, built.sheets, built.blank_pages) == (1, 1, [])
