"""Foreign PDFs onto the letter paper: scaled uniformly, centred inside safe margins,
landscape turned upright; A4 on A4 untouched; unreadable PDFs refused in plain words."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader, PdfWriter
from weasyprint import HTML

from mailroom.letters.layout.inspect import page_text_runs, text_runs
from mailroom.letters.layout.normalise import MM, SAFE_MARGIN, NormaliseError, normalise

A4 = (210 * MM, 297 * MM)
LETTER = (215.9 * MM, 279.4 * MM)


def pdf(size: str, *, pages: int = 1, corners: bool = True) -> bytes:
    """Pages of `size` with a word in each corner, right at the page's edge (2 mm in)."""
    words = ('<div style="position:absolute;left:2mm;top:2mm">TOPLEFT</div>'
             '<div style="position:absolute;right:2mm;top:2mm">TOPRIGHT</div>'
             '<div style="position:absolute;left:2mm;bottom:2mm">BOTTOMLEFT</div>'
             '<div style="position:absolute;right:2mm;bottom:2mm">BOTTOMRIGHT</div>'
             if corners else "")
    body = "".join(f'<section style="break-after:page">{words}<p>page {n}</p></section>'
                   for n in range(1, pages + 1))
    css = f"@page {{ size: {size}; margin: 0 }} body {{ margin: 0; font-size: 9pt }}"
    return HTML(string=f"<style>{css}</style>{body}").write_pdf()


def size_of(page) -> tuple[float, float]:
    return float(page.mediabox.width), float(page.mediabox.height)


def assert_inside_safe_margins(page, paper=A4):
    width_mm, height_mm = paper[0] / MM, paper[1] / MM
    runs = page_text_runs(page)
    assert runs
    for run in runs:
        assert run.x >= SAFE_MARGIN - 0.01, run
        assert run.estimated_right() <= width_mm - SAFE_MARGIN + 0.01, run
        assert run.top >= SAFE_MARGIN - 0.01, run
        assert run.y <= height_mm - SAFE_MARGIN + 0.01, run


def test_us_letter_becomes_a4_with_content_inside_the_safe_margins():
    result = normalise(pdf("letter", pages=2), "A4")
    reader = PdfReader(io.BytesIO(result))
    assert len(reader.pages) == 2
    for page in reader.pages:
        assert size_of(page) == pytest.approx(A4, abs=0.01)
        assert_inside_safe_margins(page)
    # scaled uniformly: the Letter page's width (215.9 mm) became A4 less the margins (200 mm)
    runs = {run.text: run for run in text_runs(result, 1)}
    left, right = runs["TOPLEFT"], runs["TOPRIGHT"]
    source = {run.text: run for run in text_runs(pdf("letter"), 1)}
    scale = (right.x - left.x) / (source["TOPRIGHT"].x - source["TOPLEFT"].x)
    assert scale == pytest.approx((210 - 2 * SAFE_MARGIN) / 215.9, rel=0.01)
    assert left.size / source["TOPLEFT"].size == pytest.approx(scale, rel=0.01)
    # and centred: the scaled page sits in the middle of the A4 sheet
    offset_x = (210 - 215.9 * scale) / 2
    offset_y = (297 - 279.4 * scale) / 2
    assert left.x == pytest.approx(offset_x + source["TOPLEFT"].x * scale, abs=0.2)
    assert left.y == pytest.approx(offset_y + source["TOPLEFT"].y * scale, abs=0.2)


def test_legal_and_odd_sizes_fit_a4_and_a4_fits_letter():
    for size in ("legal", "250mm 250mm", "A3"):
        page = PdfReader(io.BytesIO(normalise(pdf(size), "A4"))).pages[0]
        assert size_of(page) == pytest.approx(A4, abs=0.01)
        assert_inside_safe_margins(page)
    page = PdfReader(io.BytesIO(normalise(pdf("A4"), "LETTER"))).pages[0]
    assert size_of(page) == pytest.approx(LETTER, abs=0.01)
    assert_inside_safe_margins(page, LETTER)


def test_a_small_page_is_centred_not_enlarged():
    result = normalise(pdf("A5"), "A4")
    runs = {run.text: run for run in text_runs(result, 1)}
    source = {run.text: run for run in text_runs(pdf("A5"), 1)}
    assert runs["TOPLEFT"].size == pytest.approx(source["TOPLEFT"].size, rel=0.01)
    assert runs["TOPLEFT"].x == pytest.approx((210 - 148) / 2 + source["TOPLEFT"].x, abs=0.5)


def test_a_landscape_page_is_turned_upright():
    result = normalise(pdf("A4 landscape"), "A4")
    page = PdfReader(io.BytesIO(result)).pages[0]
    assert size_of(page) == pytest.approx(A4, abs=0.01)
    assert page.rotation == 0
    assert_inside_safe_margins_rotated(page)


def assert_inside_safe_margins_rotated(page):
    # turned a quarter turn counter-clockwise: the landscape page's top edge is now on the
    # left, so its top-left word is near the bottom-left corner and its top-right word near
    # the top-left corner of the portrait page
    runs = {run.text: run for run in page_text_runs(page)}
    assert runs["TOPLEFT"].y > 250 and runs["TOPLEFT"].x < 20
    assert runs["TOPRIGHT"].y < 40 and runs["TOPRIGHT"].x < 20
    assert runs["BOTTOMRIGHT"].y < 40 and runs["BOTTOMRIGHT"].x > 150
    for run in runs.values():
        assert SAFE_MARGIN - 0.01 <= run.x <= 210 - SAFE_MARGIN
        assert SAFE_MARGIN - 0.01 <= run.y <= 297 - SAFE_MARGIN


def test_a_page_with_a_rotate_flag_is_baked_upright():
    reader = PdfReader(io.BytesIO(pdf("A4")))
    writer = PdfWriter()
    writer.add_page(reader.pages[0]).rotate(90)  # shows as landscape in a viewer
    out = io.BytesIO()
    writer.write(out)
    result = PdfReader(io.BytesIO(normalise(out.getvalue(), "A4"))).pages[0]
    assert result.rotation == 0
    assert size_of(result) == pytest.approx(A4, abs=0.01)
    # shown as landscape (a quarter turn clockwise), then turned back upright: the words
    # are where the author put them, inside the safe margins
    runs = {run.text: run for run in page_text_runs(result)}
    assert runs["TOPLEFT"].x < 20 and runs["TOPLEFT"].y < 20
    assert runs["BOTTOMRIGHT"].x > 150 and runs["BOTTOMRIGHT"].y > 270
    assert_inside_safe_margins(result)


def test_a4_on_a4_is_untouched():
    original = pdf("A4", pages=3)
    assert normalise(original, "A4") is original
    letter = pdf("letter")
    assert normalise(letter, "LETTER") is letter


@pytest.mark.parametrize(("data", "message"), [
    (b"", "The PDF is empty."),
    (b"%PDF-1.7\n1 0 obj << /Type /Catalog >> garbage", "could not be read: it is damaged"),
    (b"GIF89a not a pdf at all", "could not be read: it is damaged or not a PDF"),
])
def test_unreadable_pdfs_are_refused_in_plain_words(data, message):
    with pytest.raises(NormaliseError, match=message) as caught:
        normalise(data, "A4")
    assert "Traceback" not in str(caught.value) and "pypdf" not in str(caught.value)


def test_truncated_pdf_is_refused():
    data = pdf("A4")
    with pytest.raises(NormaliseError, match="could not be read"):
        normalise(data[: len(data) // 3], "A4")


def test_password_protected_pdf_is_refused():
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf("A4"))))
    writer.encrypt(user_password="secret", owner_password="owner")
    out = io.BytesIO()
    writer.write(out)
    with pytest.raises(NormaliseError, match="password-protected"):
        normalise(out.getvalue(), "A4")


def test_owner_password_only_pdf_is_accepted():
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf("letter"))))
    writer.encrypt(user_password="", owner_password="owner")
    out = io.BytesIO()
    writer.write(out)
    page = PdfReader(io.BytesIO(normalise(out.getvalue(), "A4"))).pages[0]
    assert size_of(page) == pytest.approx(A4, abs=0.01)


def test_zero_pages_and_absurd_sizes_are_refused():
    out = io.BytesIO()
    PdfWriter().write(out)
    with pytest.raises(NormaliseError, match="has no pages"):
        normalise(out.getvalue(), "A4")
    for width, height in ((5 * MM, 5 * MM), (3000 * MM, 3000 * MM)):
        writer = PdfWriter()
        writer.add_blank_page(width=width, height=height)
        out = io.BytesIO()
        writer.write(out)
        with pytest.raises(NormaliseError, match="letter pages must be between 25 mm and 1200 mm"):
            normalise(out.getvalue(), "A4")


def test_unknown_paper_is_refused():
    with pytest.raises(NormaliseError, match="Unknown paper format"):
        normalise(pdf("A4"), "A2")


def test_what_the_crop_box_hid_stays_hidden():
    # a Letter page cropped to its top half: the lower words must not reappear on A4
    reader = PdfReader(io.BytesIO(pdf("letter")))
    writer = PdfWriter()
    page = writer.add_page(reader.pages[0])
    page.cropbox.lower_left = (0, 279.4 * MM / 2)
    out = io.BytesIO()
    writer.write(out)
    result = normalise(out.getvalue(), "A4")
    content = PdfReader(io.BytesIO(result)).pages[0].get_contents().get_data()
    assert b"re W n" in content  # the visible box is the clip path
    texts = {run.text for run in text_runs(result, 1)}
    assert {"TOPLEFT", "TOPRIGHT"} <= texts
