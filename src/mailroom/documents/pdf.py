"""Render a quotation or invoice to a branded A4 PDF with WeasyPrint.

HTML comes from the Django template the record's `DocumentSpec` names; the look is one
stylesheet parsed once per process. WeasyPrint never touches the network: its URL fetcher
serves the company logo and this app's own asset files and refuses everything else, so a URL
that slipped into a document (a note, a company field) cannot make the server fetch it.
"""

from __future__ import annotations

import logging
import mimetypes
import re
import threading
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit
from urllib.request import OpenerDirector, url2pathname

from django.template.loader import render_to_string

from mailroom.documents.registry import DocumentSpec, document_for
from mailroom.lib import money
from mailroom.lib.formatting import first_locale

if TYPE_CHECKING:
    from weasyprint import CSS

log = logging.getLogger(__name__)
# WeasyPrint logs each layout step at INFO; at Mailroom's default level that is ten lines per
# PDF. Its warnings (a refused URL, a missing glyph) still come through.
logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)

ASSETS_DIR = Path(__file__).resolve().parent / "assets"
STYLESHEET = ASSETS_DIR / "document.css"
HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
DEFAULT_PRIMARY = "#1f6feb"
DEFAULT_SECONDARY = "#0d1117"


@cache
def font_config():
    """One font configuration for every render: building it asks fontconfig for the system
    fonts, which costs more than laying out a one-page document. The stylesheet declares no
    @font-face, so nothing is ever added to it and sharing it is safe.

    WeasyPrint itself is imported here and in the functions that draw, on first use: the
    import (Pango, fontTools, pydyf) costs about 1.2 s, which every process paid at start —
    web, workers, gateway, each `mailroom` command — though few of them ever draw a PDF."""
    from weasyprint.text.fonts import FontConfiguration

    return FontConfiguration()


def __getattr__(name: str):
    """`pdf.FONT_CONFIG` as before, built on first use (PEP 562)."""
    if name == "FONT_CONFIG":
        return font_config()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# WeasyPrint (Pango, fontconfig, harfbuzz underneath) does not promise thread safety; a
# render takes tens of milliseconds, so serializing renders in a threaded server costs little.
_RENDER_LOCK = threading.Lock()


@dataclass(frozen=True)
class RenderedDocument:
    filename: str
    content: bytes
    mimetype: str = "application/pdf"


class NoDocument(LookupError):
    """The record's type has no registered document."""


class RefusedURL(ValueError):
    """The document asked for a resource outside the allow list (WeasyPrint skips it)."""


def LocalOnlyFetcher(files: tuple[Path, ...] = (),  # noqa: N802 — used as the class it makes
                     folders: tuple[Path, ...] = (ASSETS_DIR,)):
    """A WeasyPrint URL fetcher that serves only `files` and what is under `folders`."""
    return _fetcher_class()(files=files, folders=folders)


@cache
def _fetcher_class():
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class LocalOnlyFetcher(URLFetcher):
        """Serves the given files and files under the given folders, by file:// URL only.

        WeasyPrint's default fetcher follows http(s), ftp and redirects: from a server that is
        a request forgery waiting to happen. Here every other scheme, and every other path,
        raises `RefusedURL`; WeasyPrint logs it and leaves the resource out.
        """

        def __init__(self, files: tuple[Path, ...] = (),
                     folders: tuple[Path, ...] = (ASSETS_DIR,)):
            # Not URLFetcher.__init__: it installs urllib's network handlers and builds an
            # SSL context (~25 ms per document, for nothing). With no handlers at all, even a
            # stray call to urllib's `open` cannot reach the network.
            OpenerDirector.__init__(self)
            self._fail_on_errors = False  # read by weasyprint.urls.fetch: refusals only warn
            self._files = frozenset(path.resolve() for path in files)
            self._folders = tuple(folder.resolve() for folder in folders)

        def allows(self, url: str) -> Path | None:
            """The local path `url` names if it may be served, else None."""
            parts = urlsplit(url)
            if parts.scheme.lower() != "file" or parts.netloc not in ("", "localhost"):
                return None
            path = Path(url2pathname(parts.path)).resolve()
            if path in self._files or any(path.is_relative_to(folder)
                                          for folder in self._folders):
                return path if path.is_file() else None
            return None

        def fetch(self, url: str, headers=None) -> URLFetcherResponse:
            path = self.allows(url)
            if path is None:
                log.warning("PDF rendering refused to load %s", url[:200])
                raise RefusedURL(f"Documents only load the company logo and local assets, "
                                 f"not {url[:200]!r}.")
            content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            return URLFetcherResponse(path.as_uri(), body=path.read_bytes(),
                                      headers={"Content-Type": content_type})

    return LocalOnlyFetcher


@cache
def base_stylesheet() -> CSS:
    """Parsed once per process: parsing and matching setup is a fixed cost per document."""
    from weasyprint import CSS

    return CSS(filename=str(STYLESHEET), font_config=font_config(),
               url_fetcher=LocalOnlyFetcher())


def logo_path(company) -> Path | None:
    """The company logo as a local file, or None (no logo, missing file, remote storage)."""
    if not company.logo:
        return None
    try:
        path = Path(company.logo.path)
    except (NotImplementedError, ValueError):
        return None  # storage without local paths: print the company name instead
    return path if path.is_file() else None


def _colour(value: str, default: str) -> str:
    # Model validators only run in forms; this value lands inside a <style> block.
    return value if isinstance(value, str) and HEX_COLOUR.match(value) else default


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def brand_colours(company) -> dict[str, str]:
    """The company colours, a light tint of the primary for panels, and a readable text
    colour (white or near-black) for text set on the primary colour."""
    primary = _colour(company.primary_color, DEFAULT_PRIMARY)
    secondary = _colour(company.secondary_color, DEFAULT_SECONDARY)
    red, green, blue = _rgb(primary)
    tint = "#{:02x}{:02x}{:02x}".format(*(round(c * 0.08 + 255 * 0.92) for c in (red, green, blue)))
    luminance = (0.299 * red + 0.587 * green + 0.114 * blue) / 255
    return {"primary": primary, "secondary": secondary, "primary_tint": tint,
            "on_primary": "#111827" if luminance > 0.6 else "#ffffff"}


def tax_groups(lines, amount_tax: Decimal) -> list[dict]:
    """One row per tax with its base, rounded per line and per tax like `lib.money` does.

    If the rows do not add up to the stored tax amount (a tax rate changed after the document
    was totalled), one "Taxes" row with the stored amount is printed instead: the printed
    document must always add up.
    """
    groups: dict[int, dict] = {}
    for line in lines:
        for tax in line.taxes.all():
            group = groups.setdefault(tax.pk, {"name": tax.name, "base": money.ZERO,
                                               "amount": money.ZERO})
            group["base"] += line.subtotal
            group["amount"] += money.round_money(line.subtotal * tax.percent / money.HUNDRED)
    rows = sorted(groups.values(), key=lambda group: group["name"])
    if sum((row["amount"] for row in rows), money.ZERO) != amount_tax:
        return [{"name": "Taxes", "base": None, "amount": amount_tax}]
    return rows


def partner_lines(partner) -> list[str]:
    """Name first, then the organisation, then the postal address (the organisation's when
    the contact has none of their own)."""
    lines = [partner.name]
    parent = partner.parent if partner.parent_id else None
    if parent is not None:
        lines.append(parent.name)
    address = partner.address_lines or (parent.address_lines if parent is not None else [])
    return lines + address


def document_locale(record, lang: str | None = None) -> str:
    """`lang` if given and known, else the customer's language, else the company's; the
    template tags in `document_format` print with it through `lib.formatting`."""
    partner = getattr(record, "partner", None)
    company = getattr(record, "company", None)
    return first_locale(lang, getattr(partner, "language", None),
                        getattr(company, "language", None))


def build_context(record, spec: DocumentSpec, *, lang: str | None = None,
                  logo: Path | None = None) -> dict:
    company = record.company
    locale = document_locale(record, lang)
    lines = list(record.lines.prefetch_related("taxes"))
    return {
        "record": record,
        "company": company,
        "partner": record.partner,
        "partner_lines": partner_lines(record.partner),
        "title": spec.title(record),
        "lines": lines,
        "has_discount": any(line.discount for line in lines),
        "tax_groups": tax_groups(lines, record.amount_tax),
        "locale": locale,
        "lang_tag": str(locale).replace("_", "-"),
        "currency": record.currency or company.currency,
        "colors": brand_colours(company),
        "logo_url": logo.as_uri() if logo else "",
    }


def _spec(record) -> DocumentSpec:
    spec = document_for(record)
    if spec is None:
        raise NoDocument(f"{record._meta.verbose_name.capitalize()} records have no document.")
    return spec


def render_html(record, *, lang: str | None = None) -> str:
    """The document's HTML, as WeasyPrint receives it (handy to debug a template)."""
    spec = _spec(record)
    context = build_context(record, spec, lang=lang, logo=logo_path(record.company))
    return render_to_string(spec.template, context)


def pdf_from_html(html: str, logo: Path | None = None) -> bytes:
    """A document's HTML (from `render_html`) as PDF bytes. Touches no database, so it can run
    in another process (the letters' render pool does)."""
    from weasyprint import HTML

    fetcher = LocalOnlyFetcher(files=(logo,) if logo else ())
    with _RENDER_LOCK:
        document = HTML(string=html, base_url=ASSETS_DIR.as_uri() + "/", url_fetcher=fetcher)
        return document.write_pdf(stylesheets=[base_stylesheet()], font_config=font_config())


@dataclass(frozen=True)
class DocumentSource:
    """What it takes to print a record's document without the database: its file name, its
    HTML and the logo file the HTML may load."""

    filename: str
    html: str
    logo: Path | None = None

    def render(self) -> RenderedDocument:
        return RenderedDocument(filename=self.filename, content=pdf_from_html(self.html, self.logo))


def document_source(record, *, lang: str | None = None) -> DocumentSource:
    """The record's document ready to render (the database work of `render_pdf`)."""
    spec = _spec(record)
    logo = logo_path(record.company)
    html = render_to_string(spec.template, build_context(record, spec, lang=lang, logo=logo))
    return DocumentSource(filename=spec.filename(record), html=html, logo=logo)


def render_pdf(record, *, lang: str | None = None) -> RenderedDocument:
    """`record` as a PDF, with money and dates in `lang` (default: the customer's language,
    else the company's). Raises `NoDocument` for a record type without a document.

    Does not check access: callers load the record through the user's scoped queryset.
    """
    return document_source(record, lang=lang).render()
