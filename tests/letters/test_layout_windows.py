"""The cover page puts the address exactly in the envelope window of each standard, and
nothing in the zones printers and the post keep for themselves. Positions are read back from
the generated PDF (pypdf's text matrices), in mm from the page's top-left corner."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader
from weasyprint import HTML

from mailroom.letters.layout.generator import LetterLayoutError, LetterSpec, build
from mailroom.letters.layout.inspect import runs_in, text_runs
from mailroom.letters.layout.normalise import MM
from mailroom.letters.layout.windows import (
    PAPERS,
    SAFETY,
    STANDARDS,
    UnknownStandard,
    address_block_css,
    standard,
)

SENDER = ("Acme Trading GmbH", ["Hauptstraße 5", "10115 Berlin", "Germany"])
TOL = 0.05  # mm: PDF coordinates are floats (24.0 mm comes back as 23.99999989)
RECIPIENT = ["Erika Mustermann", "Globex AG", "Abteilung Einkauf", "Bahnhofstrasse 12",
             "8001 Zürich", "Switzerland"]


def document(pages: int = 1, size: str = "A4") -> bytes:
    body = "".join(f'<p style="break-after: page">Invoice INV/2026/0042 page {n}</p>'
                   for n in range(1, pages + 1))
    return HTML(string=f"<style>@page {{ size: {size}; margin: 20mm }}</style>{body}").write_pdf()


def letter(key: str, recipient=RECIPIENT, **options) -> bytes:
    spec = LetterSpec(sender_name=SENDER[0], sender_lines=SENDER[1], recipient_lines=recipient,
                      documents=[document()], language="de", standard=key, **options)
    return build(spec).pdf


@pytest.mark.parametrize("key", sorted(STANDARDS))
def test_recipient_lines_land_inside_the_window(key):
    std = standard(key)
    pdf = letter(key)
    runs = text_runs(pdf, 1)
    for line in RECIPIENT:
        [run] = [run for run in runs if run.text == line]
        # the glyphs' top, the baseline and the estimated right end: all in the recipient
        # block, which lies inside the window with the safety margin
        assert std.recipient.contains(run.x, run.top, TOL), (line, run)
        assert std.recipient.contains(run.x, run.y, TOL), (line, run)
        assert run.estimated_right() <= std.recipient.right, (line, run)
        assert std.window.contains(run.x, run.top, TOL) and std.window.contains(run.x, run.y, TOL)
    # in order, top to bottom, one line each
    ys = [next(run.y for run in runs if run.text == line) for line in RECIPIENT]
    assert ys == sorted(ys) and len(set(ys)) == len(ys)


@pytest.mark.parametrize("key", sorted(STANDARDS))
def test_return_line_sits_in_the_window_above_the_address(key):
    std = standard(key)
    runs = text_runs(letter(key), 1)
    [ret] = [run for run in runs if run.text.startswith("Acme Trading GmbH ·")]
    assert "10115 Berlin" in ret.text
    assert std.return_line.contains(ret.x, ret.top, tolerance=0.3)
    assert std.window.contains(ret.x, ret.top, TOL) and std.window.contains(ret.x, ret.y, TOL)
    assert ret.estimated_right() <= std.window.right
    first = next(run for run in runs if run.text == RECIPIENT[0])
    assert ret.y < first.top


@pytest.mark.parametrize("key", sorted(STANDARDS))
def test_only_the_address_is_in_the_window_and_nothing_in_protected_zones(key):
    std = standard(key)
    runs = text_runs(letter(key), 1)
    in_window = {run.text for run in runs_in(runs, std.window)}
    assert in_window - set(RECIPIENT) == {
        next(run.text for run in runs if run.text.startswith("Acme Trading GmbH ·"))}
    for zone in std.protected_zones():
        assert runs_in(runs, zone.box) == [], (zone.name, runs_in(runs, zone.box))
    # the letterhead is there too (a real letter's first page), outside the window
    assert any(run.text == "Acme Trading GmbH" for run in runs)


@pytest.mark.parametrize("key", sorted(STANDARDS))
def test_the_cover_is_on_the_standards_paper(key):
    std = standard(key)
    reader = PdfReader(io.BytesIO(letter(key)))
    width, height = PAPERS[std.paper]
    for page in reader.pages:
        assert float(page.mediabox.width) == pytest.approx(width * MM, abs=0.5)
        assert float(page.mediabox.height) == pytest.approx(height * MM, abs=0.5)


def test_us_standard_prints_on_us_letter_and_din_on_a4():
    assert standard("us10").paper == "LETTER"
    assert {standard(key).paper for key in ("din5008a", "din5008b", "sn010130", "uk_dl")} == {"A4"}
    # an A4 invoice in a US letter is put onto Letter paper
    reader = PdfReader(io.BytesIO(letter("us10")))
    assert float(reader.pages[1].mediabox.height) == pytest.approx(279.4 * MM, abs=0.5)


@pytest.mark.parametrize("key", sorted(STANDARDS))
def test_standard_figures_are_consistent(key):
    std = standard(key)
    width, height = std.page_size
    assert std.window.contains_box(std.recipient)
    assert std.window.contains_box(std.return_line)
    assert std.recipient.x - std.window.x >= SAFETY
    assert std.window.right - std.recipient.right >= SAFETY
    assert std.window.bottom - std.recipient.bottom >= SAFETY
    assert std.return_line.bottom <= std.recipient.y
    if std.franking is not None:  # the franking band lies between return line and address
        assert std.return_line.bottom <= std.franking.y + 0.01
        assert std.franking.bottom <= std.recipient.y + 0.01
    postage = std.postage_zone()
    assert postage.bottom <= std.window.y or postage.right <= std.window.x \
        or std.window.right <= postage.x
    assert 0 < std.window.x and std.window.right < width and std.window.bottom < height


def test_din_figures_follow_the_standard():
    a, b = standard("din5008a"), standard("din5008b")
    assert (a.window.x, a.window.y, a.window.width, a.window.height) == (20, 27, 85, 45)
    assert (b.window.x, b.window.y, b.window.width, b.window.height) == (20, 45, 85, 45)
    assert a.recipient.x == 25 and a.recipient.y == pytest.approx(27 + 17.7)
    assert standard("sn010130").recipient.x == 118 and standard("sn010130").recipient.y == 60
    assert standard("sn010130").side == "right"


def test_a_long_address_is_set_smaller_and_stays_in_the_window():
    long_lines = ["Prof. Dr. Maximiliane Mustermann-Schöneberg-Wittgenstein",
                  "Internationale Handelsgesellschaft für Feinmechanik mbH", "Postfach 12 34 56",
                  "Industriestraße 123a, Gebäude 7, 3. Obergeschoss", "70173 Stuttgart",
                  "Deutschland", "z. Hd. Buchhaltung"]
    std = standard("din5008b")
    runs = text_runs(letter("din5008b", recipient=long_lines), 1)
    for line in long_lines:
        [run] = [run for run in runs if run.text == line]
        assert run.size < 10
        assert std.recipient.contains(run.x, run.top, TOL)
        assert std.recipient.contains(run.x, run.y, TOL)
        assert run.estimated_right() <= std.recipient.right


def test_an_address_that_cannot_fit_is_refused_in_plain_words():
    with pytest.raises(LetterLayoutError, match="does not fit in the envelope window"):
        letter("din5008a", recipient=["A" * 120, "Somewhere"])
    with pytest.raises(LetterLayoutError, match="at most 8"):
        letter("din5008a", recipient=[f"line {n}" for n in range(9)])
    with pytest.raises(LetterLayoutError, match="no recipient address"):
        letter("din5008a", recipient=["", "  "])
    with pytest.raises(UnknownStandard, match="choose one of"):
        letter("din9999")


def test_cover_labels_are_in_the_recipients_language():
    def words(language):
        spec = LetterSpec(sender_name=SENDER[0], sender_lines=SENDER[1],
                          recipient_lines=RECIPIENT, documents=[document(2), document(1)],
                          language=language, standard="din5008b")
        return {run.text for run in text_runs(build(spec).pdf, 1)}

    assert {"Anlagen", "2 Dokumente · 3 Seiten"} <= words("de")
    assert {"Pièces jointes", "2 documents · 3 pages"} <= words("fr_CH")
    assert {"Enclosed", "2 documents · 3 pages"} <= words("pt")  # unknown: English
    # no "page 1 of N" or other labels: the address zone carries the address only
    assert not any("1 /" in text or "Seite 1" in text for text in words("de"))


def test_black_and_white_letter_uses_no_brand_colour():
    spec = LetterSpec(sender_name=SENDER[0], sender_lines=SENDER[1], recipient_lines=RECIPIENT,
                      documents=[], standard="din5008b", colour=False, accent="#ff0000")
    pdf = build(spec).pdf
    content = PdfReader(io.BytesIO(pdf)).pages[0].get_contents().get_data()
    assert b"1 0 0 rg" not in content and b"1 0 0 RG" not in content
    colour = build(LetterSpec(sender_name=SENDER[0], sender_lines=SENDER[1],
                              recipient_lines=RECIPIENT, standard="din5008b",
                              accent="#ff0000")).pdf
    assert b"1 0 0 rg" in PdfReader(io.BytesIO(colour)).pages[0].get_contents().get_data()


def test_address_block_css_places_the_block_in_the_window():
    css = address_block_css("sn010130")
    assert "left: 118.0mm; top: 60.0mm" in css
    assert ".letter-return" in css


def test_window_text_tells_whether_a_document_carries_its_own_address():
    from mailroom.letters.layout.inspect import window_text

    # Mailroom's own cover: the window shows the return line and the address
    shown = window_text(letter("din5008b"), "din5008b")
    assert shown[1:] == RECIPIENT and shown[0].startswith("Acme Trading GmbH ·")
    # a plain document has nothing there: it needs a cover page
    assert window_text(document(), "din5008b") == []
    # a document laid out with address_block_css carries its address in the window
    css = address_block_css("uk_dl")
    html = (f"<style>@page {{ size: A4; margin: 0 }} {css}</style>"
            '<div class="letter-return">Acme Ltd · 1 High Street · Leeds</div>'
            '<div class="letter-address"><div>Jane Doe</div><div>2 Low Road</div>'
            "<div>York YO1 2BB</div></div>")
    assert window_text(HTML(string=html).write_pdf(), "uk_dl") == [
        "Acme Ltd · 1 High Street · Leeds", "Jane Doe", "2 Low Road", "York YO1 2BB"]


def test_the_company_logo_replaces_the_printed_name_at_the_top(tmp_path):
    from PIL import Image

    logo = tmp_path / "logo.png"
    Image.new("RGB", (300, 80), "#1f6feb").save(logo)
    spec = LetterSpec(sender_name=SENDER[0], sender_lines=SENDER[1], recipient_lines=RECIPIENT,
                      standard="din5008a", logo=logo)
    pdf = build(spec).pdf
    page = PdfReader(io.BytesIO(pdf)).pages[0]
    assert len(page.images) == 1
    # the name is printed once (in the sender column), not as a text letterhead
    assert [run.text for run in text_runs(pdf, 1)].count(SENDER[0]) == 1
    # a logo path that does not exist prints the name instead, never fails the letter
    spec.logo = tmp_path / "missing.png"
    assert [run.text for run in text_runs(build(spec).pdf, 1)].count(SENDER[0]) == 2
