"""The one door to the letter PDF: `render_letter(letter, documents) -> RenderedLetter`.

The print-ready layout (envelope windows, protected zones, normalising foreign PDFs) is
`letters.layout.generator`, built beside this module. Until it is importable this module
makes a minimal letter of its own: an address cover page (WeasyPrint) in front of the
documents, merged with pypdf. Nothing else in the app calls the generator, so swapping the
fallback out touches this file only.
"""

from __future__ import annotations

import html
import io
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from pypdf import PdfReader, PdfWriter
from pypdf.errors import PdfReadError
from weasyprint import HTML

from mailroom.documents.pdf import _RENDER_LOCK, FONT_CONFIG, LocalOnlyFetcher

PAGE_SIZES = {"a4": "A4", "letter": "letter"}


@dataclass(frozen=True)
class RenderedLetter:
    pdf: bytes
    pages: int
    sheets: int
    paper: str = ""  # "a4" or "letter" when the layout decided it


def html_to_pdf(markup: str) -> bytes:
    """Plain WeasyPrint, no network (the documents app's local-only fetcher)."""
    with _RENDER_LOCK:
        return HTML(string=markup, url_fetcher=LocalOnlyFetcher()).write_pdf(
            font_config=FONT_CONFIG)


def page_count(pdf: bytes) -> int:
    try:
        return len(PdfReader(io.BytesIO(pdf)).pages)
    except (PdfReadError, ValueError, OSError) as exc:
        raise ValidationError({"documents": f"A document is not a readable PDF ({exc})."}) \
            from None


def sheets_for(pages: int, duplex: bool) -> int:
    return (pages + 1) // 2 if duplex else pages


def _sender_line(company) -> str:
    parts = [company.name, company.street, " ".join(p for p in (company.zip, company.city) if p)]
    return " · ".join(p for p in parts if p)


def _cover_page(letter) -> bytes:
    paper = PAGE_SIZES.get(letter.paper, "A4")
    lines = "<br>".join(html.escape(line) for line in letter.address_lines)
    markup = f"""<!doctype html><html><head><meta charset="utf-8"><style>
@page {{ size: {paper}; margin: 0; }}
body {{ font-family: sans-serif; font-size: 10pt; margin: 0; }}
.window {{ position: absolute; left: 20mm; top: 45mm; width: 85mm; height: 45mm; }}
.sender {{ font-size: 7pt; border-bottom: 0.3pt solid #000; margin-bottom: 2mm; }}
</style></head><body><div class="window">
<div class="sender">{html.escape(_sender_line(letter.company))}</div>
<div class="address">{lines}</div></div></body></html>"""
    return html_to_pdf(markup)


def merge_pdfs(parts: list[bytes], *, duplex: bool) -> tuple[bytes, int]:
    """Each part starts on a new sheet when duplex (a blank back page after an odd part)."""
    writer = PdfWriter()
    for index, part in enumerate(parts):
        try:
            reader = PdfReader(io.BytesIO(part))
            for page in reader.pages:
                writer.add_page(page)
        except (PdfReadError, ValueError, OSError) as exc:
            raise ValidationError(
                {"documents": f"A document is not a readable PDF ({exc})."}) from None
        if duplex and len(writer.pages) % 2 and index < len(parts) - 1:
            last = writer.pages[-1]
            writer.add_blank_page(width=last.mediabox.width, height=last.mediabox.height)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue(), len(writer.pages)


def _with_layout(letter, documents: list[bytes]) -> RenderedLetter | None:
    try:
        from mailroom.letters.layout.generator import (
            LetterLayoutError,
            LetterSpec,
            NormaliseError,
            build,
        )
    except ImportError:
        return None
    from mailroom.documents.pdf import logo_path

    company = letter.company
    partner = letter.partner
    spec = LetterSpec(
        sender_name=company.name,
        sender_lines=list(company.address_lines),
        recipient_lines=list(letter.address_lines),
        documents=list(documents),
        language=(getattr(partner, "language", "") or company.language or "en"),
        standard=letter.provider.window_standard,
        colour=letter.color,
        duplex=letter.duplex,
        cover_page=letter.cover_page,
        logo=logo_path(company),
        accent=company.primary_color,
    )
    try:
        built = build(spec)
    except (LetterLayoutError, NormaliseError) as exc:
        raise ValidationError({"documents": str(exc)}) from None
    return RenderedLetter(pdf=built.pdf, pages=built.pages, sheets=built.sheets,
                          paper="letter" if built.paper.upper() == "LETTER" else "a4")


def window_shows(pdf: bytes, standard_key: str, name: str) -> bool:
    """Whether the envelope window of `standard_key` shows `name` on `pdf`'s first page — if
    not, the letter needs a cover page carrying the address (or it travels blind)."""
    try:
        from mailroom.letters.layout.inspect import window_text
    except ImportError:
        return False
    try:
        lines = window_text(pdf, standard_key)
    except Exception:  # noqa: BLE001 - an unreadable first page: the cover page is the safe side
        return False
    wanted = " ".join(name.split()).casefold()
    return any(wanted in " ".join(line.split()).casefold() for line in lines)


def render_letter(letter, documents: list[bytes]) -> RenderedLetter:
    """The final PDF of `letter` (an unsaved or saved Letter with its address snapshot,
    options and provider set) made of `documents` (PDF bytes, in order)."""
    built = _with_layout(letter, documents)
    if built is not None:
        return built
    parts = list(documents)
    if letter.cover_page or not parts:
        parts.insert(0, _cover_page(letter))
    pdf, pages = merge_pdfs(parts, duplex=letter.duplex)
    return RenderedLetter(pdf=pdf, pages=pages, sheets=sheets_for(pages, letter.duplex))
