"""Put foreign PDFs onto the letter's paper: every page portrait, the paper's size, content
inside safe margins.

A page already the paper's size (within 1 mm) and upright is left alone; when every page is,
the bytes come back unchanged. Any other page (US Letter or Legal on A4, A4 on Letter, odd
sizes, landscape) is turned upright when landscape, scaled uniformly (never enlarged) so it
fits inside the paper less `SAFE_MARGIN` on each side, and centred. A PDF that cannot be
read, is password-protected, has no pages or pages of absurd size raises `NormaliseError`
with a sentence a user can act on.
"""

from __future__ import annotations

import io
import logging

from pypdf import PageObject, PdfReader, PdfWriter, Transformation
from pypdf.errors import PyPdfError

from mailroom.letters.layout.windows import PAPERS

log = logging.getLogger(__name__)

MM = 72 / 25.4  # PDF points per millimetre
SAFE_MARGIN = 5.0  # mm kept clear on each side of a rescaled page
SAME_SIZE_TOLERANCE = 1.0  # mm: a page this close to the paper size is the paper size
MIN_SIDE = 25.0  # mm: smaller than a business card is not a document page
MAX_SIDE = 1200.0  # mm: bigger than A0 is not something a letter printer takes
MAX_PAGES = 1000


class NormaliseError(ValueError):
    """The PDF cannot be put onto letter paper; the message says why, in plain words."""


def paper_points(paper: str) -> tuple[float, float]:
    try:
        width, height = PAPERS[paper.upper()]
    except KeyError:
        raise NormaliseError(f"Unknown paper format {paper!r}; use A4 or LETTER.") from None
    return width * MM, height * MM


def read_pdf(data: bytes, *, what: str = "The PDF") -> PdfReader:
    """A reader over `data`, or `NormaliseError` saying what is wrong with it."""
    if not data:
        raise NormaliseError(f"{what} is empty.")
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            # An owner password alone (printing allowed, no password to open) is common on
            # invoices from accounting systems; those open with the empty password.
            if not reader.decrypt(""):
                raise NormaliseError(f"{what} is password-protected; upload a copy without "
                                     f"a password.")
        count = len(reader.pages)
    except NormaliseError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError,
            RecursionError, OSError, NotImplementedError) as error:
        log.info("unreadable PDF: %s", error)
        raise NormaliseError(f"{what} could not be read: it is damaged or not a PDF.") from None
    if count == 0:
        raise NormaliseError(f"{what} has no pages.")
    if count > MAX_PAGES:
        raise NormaliseError(f"{what} has {count} pages; a letter takes at most {MAX_PAGES}.")
    return reader


def _box(page: PageObject) -> tuple[float, float, float, float]:
    box = page.cropbox
    return float(box.left), float(box.bottom), float(box.width), float(box.height)


def _fits(width: float, height: float, paper: tuple[float, float]) -> bool:
    tolerance = SAME_SIZE_TOLERANCE * MM
    return abs(width - paper[0]) <= tolerance and abs(height - paper[1]) <= tolerance


def normalise_page(page: PageObject, paper: tuple[float, float], *, number: int = 1,
                   what: str = "The PDF") -> PageObject:
    """`page` as it will print on `paper` (points): the same object when it already fits."""
    try:
        rotation = page.rotation % 360
        _, _, width, height = _box(page)
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError) as error:
        log.info("unreadable page %s: %s", number, error)
        raise NormaliseError(f"{what} could not be read: page {number} is damaged.") from None
    for side in (width, height):
        if not MIN_SIDE * MM <= abs(side) <= MAX_SIDE * MM:
            raise NormaliseError(
                f"{what} has a page of {abs(width) / MM:.0f} × {abs(height) / MM:.0f} mm "
                f"(page {number}); letter pages must be between {MIN_SIDE:.0f} mm and "
                f"{MAX_SIDE:.0f} mm on each side.")
    if rotation == 0 and _fits(width, height, paper):
        return page
    if rotation:
        page.transfer_rotation_to_content()  # bakes /Rotate into the content and the boxes
    left, bottom, width, height = _box(page)
    # Move the visible box to the origin, then turn a landscape page a quarter turn to
    # portrait (counter-clockwise: its top edge ends on the left, as printers do).
    transform = Transformation().translate(-left, -bottom)
    if width > height:
        transform = transform.rotate(90).translate(height, 0)
        width, height = height, width
    usable_w = paper[0] - 2 * SAFE_MARGIN * MM
    usable_h = paper[1] - 2 * SAFE_MARGIN * MM
    scale = min(1.0, usable_w / width, usable_h / height)
    transform = transform.scale(scale, scale).translate(
        (paper[0] - width * scale) / 2, (paper[1] - height * scale) / 2)
    target = PageObject.create_blank_page(width=paper[0], height=paper[1])
    try:
        target.merge_transformed_page(page, transform)
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError) as error:
        log.info("page %s could not be merged: %s", number, error)
        raise NormaliseError(f"{what} could not be read: page {number} is damaged.") from None
    return target


def normalised_pages(reader: PdfReader, paper: str, *, what: str = "The PDF"
                     ) -> tuple[list[PageObject], bool]:
    """The reader's pages on `paper`, and whether any page had to change."""
    size = paper_points(paper)
    pages, changed = [], False
    for number, page in enumerate(reader.pages, start=1):
        result = normalise_page(page, size, number=number, what=what)
        changed = changed or result is not page
        pages.append(result)
    return pages, changed


def normalise(pdf_bytes: bytes, paper: str = "A4") -> bytes:
    """`pdf_bytes` with every page on `paper` ("A4" or "LETTER"); unchanged bytes when every
    page already is. Raises `NormaliseError` for a PDF that cannot be read or placed."""
    reader = read_pdf(pdf_bytes)
    pages, changed = normalised_pages(reader, paper)
    if not changed:
        return pdf_bytes
    writer = PdfWriter()
    for page in pages:
        writer.add_page(page)
    output = io.BytesIO()
    writer.write(output)
    return output.getvalue()
