"""How wide a line of text prints in DejaVu Sans (the font of every Mailroom PDF), in mm.

The cover page never wraps an address line: a line too long for the window is set smaller
instead, and the size is chosen from the font's own advance widths (fontTools, which
WeasyPrint already depends on). Where the font file cannot be found, a pessimistic average
glyph width is used, so a line can come out smaller than needed but never wider.
"""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path

log = logging.getLogger(__name__)

PT = 25.4 / 72  # mm per point
FALLBACK_EM = 0.62  # wider than DejaVu Sans' average glyph (about 0.55 em)
FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "/Library/Fonts",
             "/System/Library/Fonts", str(Path.home() / ".fonts"))
FONT_FILES = {False: "DejaVuSans.ttf", True: "DejaVuSans-Bold.ttf"}


@cache
def _advances(bold: bool):
    """(advance in em per code point, advance of a missing glyph), or None without the font."""
    name = FONT_FILES[bold]
    for folder in FONT_DIRS:
        for path in sorted(Path(folder).rglob(name)) if Path(folder).is_dir() else ():
            try:
                from fontTools.ttLib import TTFont

                font = TTFont(str(path), lazy=True)
                units = font["head"].unitsPerEm
                metrics = font["hmtx"].metrics
                widths = {code: metrics[glyph][0] / units
                          for code, glyph in font.getBestCmap().items()}
                return widths, metrics[".notdef"][0] / units
            except Exception as error:  # a broken font file: fall back to the estimate
                log.warning("cannot read %s: %s", path, error)
    return None


def text_width(text: str, size_pt: float, *, bold: bool = False) -> float:
    """Width of `text` set in DejaVu Sans at `size_pt`, in mm (kerning ignored: it only
    makes lines narrower)."""
    table = _advances(bold)
    if table is None:
        return len(text) * FALLBACK_EM * size_pt * PT
    widths, missing = table
    return sum(widths.get(ord(char), missing) for char in text) * size_pt * PT
