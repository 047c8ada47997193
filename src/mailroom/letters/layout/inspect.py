"""Where the text of a PDF page is, in mm from the page's top-left corner.

Used to check a letter before it goes out (does the first page carry an address in the
window? is anything printed in a protected zone?) and by the layout tests, which read the
generated PDFs back with it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from pypdf import PageObject, PdfReader

from mailroom.letters.layout.metrics import text_width
from mailroom.letters.layout.windows import Box, standard

MM = 72 / 25.4


@dataclass(frozen=True)
class TextRun:
    text: str
    x: float  # mm from the left edge, start of the baseline
    y: float  # mm from the top edge, the baseline
    size: float  # font size in points, as printed

    @property
    def top(self) -> float:
        """Top of the tallest glyphs (about the font size above the baseline)."""
        return self.y - self.size / MM * 0.8

    def estimated_right(self) -> float:
        """Right end of the run, from DejaVu Sans' advance widths (Mailroom's PDF font)."""
        return self.x + text_width(self.text, self.size)


def _multiply(a, b):
    return [a[0] * b[0] + a[1] * b[2], a[0] * b[1] + a[1] * b[3],
            a[2] * b[0] + a[3] * b[2], a[2] * b[1] + a[3] * b[3],
            a[4] * b[0] + a[5] * b[2] + b[4], a[4] * b[1] + a[5] * b[3] + b[5]]


def page_text_runs(page: PageObject) -> list[TextRun]:
    height = float(page.mediabox.top)
    origin_x = float(page.mediabox.left)
    runs: list[TextRun] = []

    def visit(text, cm, tm, font_dict, font_size):
        if not text or not text.strip():
            return
        m = _multiply(tm, cm)
        scale = (m[2] ** 2 + m[3] ** 2) ** 0.5  # vertical scale of the text space
        runs.append(TextRun(text=text.strip(), x=(m[4] - origin_x) / MM,
                            y=(height - m[5]) / MM, size=(font_size or 1) * scale))

    page.extract_text(visitor_text=visit)
    return runs


def text_runs(pdf: bytes, page_number: int = 1) -> list[TextRun]:
    """The text runs of page `page_number` (1-based) of `pdf`."""
    reader = PdfReader(io.BytesIO(pdf))
    return page_text_runs(reader.pages[page_number - 1])


def runs_in(runs: list[TextRun], box: Box) -> list[TextRun]:
    """Runs whose baseline start lies in `box`, or whose glyphs reach into it."""
    found = []
    for run in runs:
        # bold glyphs are up to 15 % wider than the regular ones the estimate uses
        right = run.x + (run.estimated_right() - run.x) * 1.15
        horizontally = run.x <= box.right and right >= box.x
        vertically = run.top <= box.bottom and run.y >= box.y
        if horizontally and vertically:
            found.append(run)
    return found


def window_text(pdf: bytes, standard_key: str) -> list[str]:
    """The text a window envelope of `standard_key` would show of `pdf`'s first page, top to
    bottom. Empty: the document carries no address there and needs a cover page."""
    window = standard(standard_key).window
    runs = [run for run in text_runs(pdf, 1)
            if window.contains(run.x, run.top, 0.1) and window.contains(run.x, run.y, 0.1)]
    return [run.text for run in sorted(runs, key=lambda run: (round(run.y, 1), run.x))]
