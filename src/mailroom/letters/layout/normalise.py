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
from pypdf.generic import DecodedStreamObject, NameObject, RectangleObject

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


def _upright(transform: Transformation, box: tuple[float, float, float, float]
             ) -> Transformation:
    """`transform` followed by the shift that puts the page's visible `box` (left, bottom,
    width, height), as transformed, back at the origin."""
    left, bottom, width, height = box
    corners = [transform.apply_on((x, y))
               for x in (left, left + width) for y in (bottom, bottom + height)]
    return transform.translate(-min(x for x, _ in corners), -min(y for _, y in corners))


def plan_page(page: PageObject, paper: tuple[float, float], *, number: int = 1,
              what: str = "The PDF") -> Transformation | None:
    """How `page` must move to print on `paper` (points): None when it already fits."""
    try:
        rotation = page.rotation % 360
        box = _box(page)
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError) as error:
        log.info("unreadable page %s: %s", number, error)
        raise NormaliseError(f"{what} could not be read: page {number} is damaged.") from None
    _, _, width, height = box
    for side in (width, height):
        if not MIN_SIDE * MM <= abs(side) <= MAX_SIDE * MM:
            raise NormaliseError(
                f"{what} has a page of {abs(width) / MM:.0f} × {abs(height) / MM:.0f} mm "
                f"(page {number}); letter pages must be between {MIN_SIDE:.0f} mm and "
                f"{MAX_SIDE:.0f} mm on each side.")
    if rotation == 0 and _fits(width, height, paper):
        return None
    # Move the visible box to the origin, turn it the way a viewer shows it (/Rotate is
    # clockwise), then a landscape page a quarter turn counter-clockwise to portrait (its top
    # edge ends on the left, as printers do); after each turn, back into the positive quadrant.
    transform = _upright(Transformation(), box)
    if rotation:
        transform = _upright(transform.rotate(-rotation), box)
        if rotation in (90, 270):
            width, height = height, width
    if width > height:
        transform = _upright(transform.rotate(90), box)
        width, height = height, width
    usable_w = paper[0] - 2 * SAFE_MARGIN * MM
    usable_h = paper[1] - 2 * SAFE_MARGIN * MM
    scale = min(1.0, usable_w / width, usable_h / height)
    return transform.scale(scale, scale).translate(
        (paper[0] - width * scale) / 2, (paper[1] - height * scale) / 2)


def add_page(writer: PdfWriter, page: PageObject, transform: Transformation | None,
             paper: tuple[float, float], *, number: int = 1, what: str = "The PDF") -> None:
    """Append `page` to `writer`, moved by `transform` onto `paper`.

    The page's own content is wrapped in `q <matrix> cm … Q` and its boxes set to the paper:
    nothing is parsed or re-encoded (pypdf's merge_transformed_page parses every content
    operator, several times slower). Links and other annotations are dropped from a moved
    page: on paper they do nothing, and their rectangles would no longer match.
    """
    placed = writer.add_page(page)
    if transform is None:
        return
    try:
        content = placed.get_contents()
        data = content.get_data() if content is not None else b""
        matrix = " ".join(f"{value:.6f}" for value in transform.matrix[0][:2] +
                          transform.matrix[1][:2] + transform.matrix[2][:2])
        # clip to the page's visible box: what its crop box hid stays hidden on the paper
        left, bottom, width, height = _box(placed)
        clip = f"{left:.4f} {bottom:.4f} {width:.4f} {height:.4f} re W n\n"
        stream = DecodedStreamObject()
        stream.set_data(b"q " + matrix.encode() + b" cm " + clip.encode() + data + b"\nQ\n")
        placed.replace_contents(stream)
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError) as error:
        log.info("page %s could not be placed: %s", number, error)
        raise NormaliseError(f"{what} could not be read: page {number} is damaged.") from None
    target = RectangleObject([0, 0, paper[0], paper[1]])
    placed.mediabox = target
    placed.cropbox = target
    for key in ("/TrimBox", "/BleedBox", "/ArtBox", "/Rotate", "/Annots"):
        if key in placed:
            del placed[NameObject(key)]


def plan(reader: PdfReader, paper: str, *, what: str = "The PDF"
         ) -> list[tuple[PageObject, Transformation | None]]:
    """Each page of `reader` with the move that puts it on `paper` (None: it fits)."""
    size = paper_points(paper)
    return [(page, plan_page(page, size, number=number, what=what))
            for number, page in enumerate(reader.pages, start=1)]


def normalise(pdf_bytes: bytes, paper: str = "A4") -> bytes:
    """`pdf_bytes` with every page on `paper` ("A4" or "LETTER"); unchanged bytes when every
    page already is. Raises `NormaliseError` for a PDF that cannot be read or placed."""
    reader = read_pdf(pdf_bytes)
    pages = plan(reader, paper)
    if all(transform is None for _, transform in pages):
        return pdf_bytes
    size = paper_points(paper)
    writer = PdfWriter()
    for number, (page, transform) in enumerate(pages, start=1):
        add_page(writer, page, transform, size, number=number)
    output = io.BytesIO()
    writer.write(output)
    return output.getvalue()
