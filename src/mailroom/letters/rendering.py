"""The one door to the letter PDF: `render_letter(letter, documents) -> RenderedLetter`.

The print-ready layout (envelope windows, protected zones, normalising foreign PDFs) is
`letters.layout.generator`; this module turns a Letter row into its LetterSpec, and keeps the
two PDF helpers the print room uses for its batches (`html_to_pdf`, `merge_pdfs`).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from pypdf import PdfReader, PdfWriter
from pypdf.errors import PdfReadError

from mailroom.documents.pdf import _RENDER_LOCK, LocalOnlyFetcher, font_config, logo_path
from mailroom.letters.layout.generator import LetterLayoutError, LetterSpec, NormaliseError, build
from mailroom.letters.layout.inspect import window_text


@dataclass(frozen=True)
class RenderedLetter:
    pdf: bytes
    pages: int
    sheets: int
    paper: str = ""  # "a4" or "letter" when the layout decided it


def html_to_pdf(markup: str) -> bytes:
    """Plain WeasyPrint, no network (the documents app's local-only fetcher)."""
    from weasyprint import HTML  # on first use: documents.pdf.font_config says why

    with _RENDER_LOCK:
        return HTML(string=markup, url_fetcher=LocalOnlyFetcher()).write_pdf(
            font_config=font_config())


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


def letter_spec(letter, documents: list[bytes]) -> LetterSpec:
    """The layout's view of `letter` (an unsaved or saved Letter with its address snapshot,
    options and provider set) made of `documents` (PDF bytes, in order)."""
    company = letter.company
    partner = letter.partner
    return LetterSpec(
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
        message=getattr(letter, "cover_message", ""),
    )


def rendered(built) -> RenderedLetter:
    return RenderedLetter(pdf=built.pdf, pages=built.pages, sheets=built.sheets,
                          paper="letter" if built.paper.upper() == "LETTER" else "a4")


def render_letter(letter, documents: list[bytes]) -> RenderedLetter:
    """The final PDF of `letter` made of `documents`; a layout problem is a ValidationError
    in plain words."""
    try:
        built = build(letter_spec(letter, documents))
    except (LetterLayoutError, NormaliseError) as exc:
        raise ValidationError({"documents": str(exc)}) from None
    return rendered(built)


def window_shows(pdf: bytes, standard_key: str, name: str) -> bool:
    """Whether the envelope window of `standard_key` shows `name` on `pdf`'s first page — if
    not, the letter needs a cover page carrying the address (or it travels blind)."""
    try:
        lines = window_text(pdf, standard_key)
    except Exception:  # noqa: BLE001 - an unreadable first page: the cover page is the safe side
        return False
    wanted = " ".join(name.split()).casefold()
    return any(wanted in " ".join(line.split()).casefold() for line in lines)
