"""Build the print-ready PDF of one postal letter: an optional cover page carrying the address
in the envelope window, then the documents, each normalised onto the letter's paper, with
blank backs in duplex so every document starts on a fresh sheet.

The cover page is one WeasyPrint render (`letters/layout/cover.html`, every element
absolutely positioned in mm from `windows.py`); the documents are never re-rendered, only
merged page by page with pypdf. A cover may carry a message below the window (a payment
reminder written by an automation): it flows onto a second page if long, never into the
window, and the documents then start on a fresh sheet. The caller (the letters services)
owns what to send and to whom: `build` is pure — bytes in, bytes out.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import nh3
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe
from pypdf import PageObject, PdfReader, PdfWriter, Transformation

from mailroom.documents.pdf import _RENDER_LOCK, ASSETS_DIR, LocalOnlyFetcher, font_config
from mailroom.letters.layout.metrics import PT, text_width
from mailroom.letters.layout.normalise import (
    NormaliseError,  # re-exported: callers catch both errors from here
    add_page,
    paper_points,
    plan,
    read_pdf,
)
from mailroom.letters.layout.windows import Box, WindowStandard, standard
from mailroom.lib.html import text_to_html

MAX_ADDRESS_LINES = 8
ADDRESS_MAX_PT = 10.0
ADDRESS_MIN_PT = 7.0
RETURN_MAX_PT = 7.0
RETURN_MIN_PT = 5.0
LINE_HEIGHT = 1.2  # line height / font size for the address
HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
MESSAGE_BOTTOM_MM = 20.0  # the message keeps this margin at the foot of every page
# A message prints text and its structure only: no attributes (styles could move it into the
# window), no images (nothing remote is fetched anyway).
MESSAGE_TAGS = {"p", "br", "div", "span", "strong", "b", "em", "i", "u", "s", "small", "ul",
                "ol", "li", "h1", "h2", "h3", "h4", "blockquote", "table", "thead", "tbody",
                "tr", "td", "th", "hr", "pre", "code", "a"}
_TAG = re.compile(r"<[a-zA-Z/][^>]*>")

LABELS: dict[str, dict[str, str]] = {
    "en": {"title": "Enclosed", "page": "{n} page", "pages": "{n} pages",
           "document": "{n} document", "documents": "{n} documents"},
    "de": {"title": "Anlagen", "page": "{n} Seite", "pages": "{n} Seiten",
           "document": "{n} Dokument", "documents": "{n} Dokumente"},
    "fr": {"title": "Pièces jointes", "page": "{n} page", "pages": "{n} pages",
           "document": "{n} document", "documents": "{n} documents"},
    "it": {"title": "Allegati", "page": "{n} pagina", "pages": "{n} pagine",
           "document": "{n} documento", "documents": "{n} documenti"},
    "es": {"title": "Documentos adjuntos", "page": "{n} página", "pages": "{n} páginas",
           "document": "{n} documento", "documents": "{n} documentos"},
    "nl": {"title": "Bijlagen", "page": "{n} pagina", "pages": "{n} pagina's",
           "document": "{n} document", "documents": "{n} documenten"},
}


class LetterLayoutError(ValueError):
    """The letter cannot be laid out; the message says why in plain words."""


@dataclass
class LetterSpec:
    sender_name: str
    sender_lines: list[str]
    recipient_lines: list[str]  # the snapshot of the postal address, name first
    documents: list[bytes] = field(default_factory=list)
    language: str = "en"
    standard: str = "din5008b"
    colour: bool = True
    duplex: bool = False
    cover_page: bool = True
    logo: Path | None = None  # a local image file; None prints the company name only
    accent: str = "#1f6feb"  # the company's primary colour, used when `colour`
    message: str = ""  # on the cover below the window: plain text or HTML (sanitised here)


@dataclass(frozen=True)
class BuiltLetter:
    pdf: bytes
    pages: int
    sheets: int
    blank_pages: list[int]  # 1-based positions of the inserted blank backs
    paper: str = "A4"


def labels_for(language: str) -> dict[str, str]:
    code = (language or "en").replace("-", "_").split("_")[0].lower()
    return LABELS.get(code, LABELS["en"])


def _count(labels: dict[str, str], key: str, n: int) -> str:
    return labels[key if n == 1 else key + "s"].format(n=n)


def _fit(lines: list[str], box: Box, *, max_pt: float, min_pt: float, what: str,
         line_height: float = LINE_HEIGHT) -> float:
    """The largest font size (pt) at which `lines` fit in `box`, or `LetterLayoutError`."""
    widest = max(lines, key=lambda line: text_width(line, 1.0))
    by_height = box.height / (len(lines) * line_height * PT)
    by_width = box.width / max(text_width(widest, 1.0), 0.01)
    size = min(max_pt, by_height, by_width)
    if size < min_pt:
        raise LetterLayoutError(
            f"The {what} does not fit in the envelope window: shorten its longest line "
            f"(\"{widest[:60]}\", {len(widest)} characters) or use fewer lines "
            f"({len(lines)}).")
    return math.floor(size * 10) / 10


def _clean(lines: list[str]) -> list[str]:
    return [" ".join(str(line).split()) for line in lines if line and str(line).strip()]


def return_line(spec: LetterSpec, box: Box) -> tuple[str, float]:
    """The sender's one-line return address and its size; drops middle address lines (then
    the name's length decides) until it fits the window's width."""
    parts = [spec.sender_name.strip(), *_clean(spec.sender_lines)]
    while True:
        text = " · ".join(parts)
        size = min(RETURN_MAX_PT, box.width / max(text_width(text, 1.0), 0.01),
                   box.height / PT / 1.05)
        if size >= RETURN_MIN_PT or len(parts) <= 2:
            return text, max(math.floor(size * 10) / 10, RETURN_MIN_PT)
        del parts[1]  # keep the name and the last lines (town, country)


def message_html(message: str) -> str:
    """The cover's message as safe HTML: plain text becomes paragraphs; HTML keeps its text
    and structure only (`MESSAGE_TAGS`, no attributes)."""
    if not (message or "").strip():
        return ""
    if not _TAG.search(message):
        return text_to_html(message)
    return nh3.clean(message, tags=MESSAGE_TAGS, attributes={}, link_rel=None,
                     strip_comments=True).strip()


def _layout(std: WindowStandard) -> dict:
    """Boxes for the cover's brand (top left), sender details (the column beside the window),
    divider and note (below the first fold), all outside the window and the protected zones."""
    width, height = std.page_size
    window = std.window
    postage = std.postage_zone()
    brand = Box(20.0, 10.0, postage.x - 20 - 10, min(window.y, postage.bottom) - 3 - 10)
    if std.side == "left":
        sender_x = max(window.right + 15, 125.0)
        sender = Box(sender_x, max(window.y, postage.bottom + 5), width - sender_x - 12,
                     window.height)
    else:
        sender = Box(20.0, window.y, window.x - 20 - 10, window.height)
    note_y = max(window.bottom + 20, height / 3 + 8)
    note = Box(25.0, note_y, width - 25 - 20, 30.0)
    rule = Box(20.0, note_y - 7, width - 40, 0)
    return {"brand": brand, "sender": sender, "note": note, "rule": rule}


def render_cover(spec: LetterSpec, std: WindowStandard, *, documents: int, pages: int) -> bytes:
    recipient = _clean(spec.recipient_lines)
    if not recipient:
        raise LetterLayoutError("The letter has no recipient address.")
    if len(recipient) > MAX_ADDRESS_LINES:
        raise LetterLayoutError(f"The recipient address has {len(recipient)} lines; a window "
                                f"holds at most {MAX_ADDRESS_LINES}.")
    address_pt = _fit(recipient, std.recipient, max_pt=ADDRESS_MAX_PT,
                      min_pt=ADDRESS_MIN_PT, what="recipient address")
    ret_text, return_pt = return_line(spec, std.return_line)
    labels = labels_for(spec.language)
    accent = spec.accent if spec.colour and HEX_COLOUR.match(spec.accent or "") else "#111827"
    logo = spec.logo if spec.logo and Path(spec.logo).is_file() else None
    width, height = std.page_size
    context = {
        "lang_tag": (spec.language or "en").replace("_", "-"),
        "page_width": width, "page_height": height,
        "ret": std.return_line, "return_pt": return_pt, "return_line": ret_text,
        "rcp": std.recipient, "address_pt": address_pt,
        "address_line_mm": round(address_pt * LINE_HEIGHT * PT, 2),
        "recipient_lines": recipient,
        "sender_name": spec.sender_name, "sender_lines": _clean(spec.sender_lines),
        "accent": accent, "logo_url": logo.as_uri() if logo else "",
        "labels": labels,
        "contents": (f"{_count(labels, 'document', documents)} · {_count(labels, 'page', pages)}"
                     if documents else ""),
        # sanitised by message_html: structure tags only, no attributes
        "message": mark_safe(message_html(spec.message)),  # noqa: S308
        "message_bottom": MESSAGE_BOTTOM_MM,
        **_layout(std),
    }
    html = render_to_string("letters/layout/cover.html", context)
    from weasyprint import HTML  # on first use: documents.pdf.font_config says why

    fetcher = LocalOnlyFetcher(files=(logo,) if logo else ())
    with _RENDER_LOCK:  # shared with the document PDFs: WeasyPrint is not thread-safe
        document = HTML(string=html, base_url=ASSETS_DIR.as_uri() + "/", url_fetcher=fetcher)
        return document.write_pdf(font_config=font_config())


def build(spec: LetterSpec) -> BuiltLetter:
    """The letter's final PDF with its page and sheet counts and where the blank backs are.

    Raises `LetterLayoutError` (the address does not fit, nothing to send) or
    `NormaliseError` (a document cannot be read or placed) with a plain message.
    """
    std = standard(spec.standard)
    paper = std.paper
    size = paper_points(paper)
    if not spec.documents and not spec.cover_page:
        raise LetterLayoutError("The letter has no documents and no cover page: nothing to print.")
    parts: list[tuple[str, list[tuple[PageObject, Transformation | None]]]] = []
    for number, data in enumerate(spec.documents, start=1):
        what = "The document" if len(spec.documents) == 1 else f"Document {number}"
        parts.append((what, plan(read_pdf(data, what=what), paper, what=what)))

    writer = PdfWriter()
    blank_pages: list[int] = []

    def add_blank():
        writer.add_blank_page(width=size[0], height=size[1])
        blank_pages.append(len(writer.pages))

    if spec.cover_page:
        total = sum(len(pages) for _, pages in parts)
        cover = PdfReader(io.BytesIO(render_cover(spec, std, documents=len(parts),
                                                   pages=total))).pages
        for page in cover:
            writer.add_page(page)
        if spec.duplex and len(cover) % 2:
            add_blank()  # the back of the cover: the first document starts on a new sheet
    for index, (what, pages) in enumerate(parts):
        for number, (page, transform) in enumerate(pages, start=1):
            add_page(writer, page, transform, size, number=number, what=what)
        if spec.duplex and len(pages) % 2 and index < len(parts) - 1:
            add_blank()  # so the next document starts on a recto
    writer.add_metadata({"/Producer": "Mailroom", "/Creator": "Mailroom letters",
                         "/Title": f"Letter from {spec.sender_name}"})
    output = io.BytesIO()
    writer.write(output)
    count = len(writer.pages)
    sheets = (count + 1) // 2 if spec.duplex else count
    return BuiltLetter(pdf=output.getvalue(), pages=count, sheets=sheets,
                       blank_pages=blank_pages, paper=paper)


__all__ = ["BuiltLetter", "LetterLayoutError", "LetterSpec", "NormaliseError", "build",
           "render_cover"]
