"""Envelope-window standards as data, in millimetres, origin at the page's top-left corner.

A standard names the paper the letter is printed on and where, on the first page, the
envelope's window shows: the recipient block (the postal address, nothing else), the return
line above it, and the zones a printer or a postal service keeps for itself. The cover page
(`generator`) is laid out from these figures and the tests read the text positions back from
the PDF and check them against the same figures, so a wrong number here fails loudly there.

Sources (every figure below names the one it comes from):

- DIN 5008:2020 (business letters, Germany/Austria), as summarised by helmol.de
  ("Anschriftfeld": form A top margin 2.7 cm, form B 4.5 cm) and korrespondenz-din-5008.de /
  sekada.de (address field 85 × 45 mm with the return address: 5 mm return-address zone
  ("Rücksendeangabe"), then the rest of the 17.7 mm "Zusatz- und Vermerkzone" for postal
  endorsements and electronic franking, then the 27.3 mm "Anschriftzone"; field 20 mm from
  the left edge, text at 25 mm). The Deutsche Post print-service rules quoted on
  swspedia.atlassian.net repeat form B: "45 mm von oben, 20 mm von links, 85 mm Breite,
  45 mm Höhe", and keep a band between the return line and the address free for franking.
- SN 010130 (Swiss business letters, right-hand window): the address sits 118 mm from the
  left and 60 mm from the top — the position Pingen (help.pingen.com, "Letter standards &
  templates") and Odoo's snailmail cover page ("address at 118 × 60 mm", issue 14) both use
  for Swiss right-window envelopes. Pingen's address area is 85.5 × 25.5 mm and its postage
  (franking) area is the 20 mm band above the address, inside the window; the window box
  here (113..198 × 45..90 mm) is the C5/6 right window that contains both with play.
- UK: the DL window envelope (110 × 220 mm) has a 90 × 45 mm window 20 mm from the left and
  15 mm from the bottom (the ISO 269 / DIN 680 DL window, the stock UK "DL window"). An A4
  sheet folded in thirds (99 mm panels) moves up to 11 mm inside it, so the band that always
  shows is 50..84 mm from the top of the sheet; the box below is that band.
- US #10: the commercial #10 window envelope (4 1/8 × 9 1/2 in) has a 1 1/8 × 4 1/2 in window
  7/8 in from the left and 1/2 in from the bottom (response-envelope.com gives the
  left-then-bottom convention; Lob's help centre documents the same #10 face size). A US
  Letter sheet folded in thirds (3 2/3 in panels) shows it from 2 in below its top edge in
  the usual business-letter layouts; the box below is 2 in down, 7/8 in in, 1 1/8 × 4 1/2 in.

Every standard also keeps 5 mm outer margins free of anything (printer grip and non-printable
edge; Pingen and Deutsche Post ask for 5 mm or more), and the page's top-right corner under the
envelope's franking area (74 × 40 mm from the top right corner: Deutsche Post's
"Frankierzone", the same for every envelope format) free, so a stamp or franking imprint
never lands on printed matter and a franking machine never reads the page's print.
None of these standards defines a barcode quiet zone on the sheet itself (the post's sorting
barcodes go on the envelope, outside the window), so there is none here.
"""

from __future__ import annotations

from dataclasses import dataclass

INCH = 25.4

# Paper sizes in mm (width, height), portrait.
PAPERS: dict[str, tuple[float, float]] = {
    "A4": (210.0, 297.0),
    "LETTER": (215.9, 279.4),
}

OUTER_MARGIN = 5.0  # mm on every edge: nothing printed there
SAFETY = 3.0  # mm between the window edge and the recipient block, at least


@dataclass(frozen=True)
class Box:
    """A rectangle in mm from the page's top-left corner."""

    x: float
    y: float
    width: float
    height: float

    @property
    def right(self) -> float:
        return self.x + self.width

    @property
    def bottom(self) -> float:
        return self.y + self.height

    def contains(self, x: float, y: float, tolerance: float = 0.0) -> bool:
        return (self.x - tolerance <= x <= self.right + tolerance
                and self.y - tolerance <= y <= self.bottom + tolerance)

    def contains_box(self, other: Box) -> bool:
        return (self.x <= other.x and self.y <= other.y
                and other.right <= self.right and other.bottom <= self.bottom)


@dataclass(frozen=True)
class Zone:
    """A part of the page that must stay empty on the cover page (a printer's or the post's)."""

    name: str
    box: Box
    reason: str


@dataclass(frozen=True)
class WindowStandard:
    key: str
    label: str
    paper: str  # a PAPERS key
    window: Box  # what the envelope window shows, with the letter anywhere in its play
    recipient: Box  # the postal address lines, nothing else
    return_line: Box  # the sender's one-line return address, above the recipient, in the window
    franking: Box | None  # endorsements / electronic franking band inside the window
    side: str  # "left" or "right": where the window is, so the letterhead goes the other way

    @property
    def page_size(self) -> tuple[float, float]:
        return PAPERS[self.paper]

    def postage_zone(self) -> Box:
        """The top-right corner under the envelope's franking area (74 × 40 mm from the top
        right corner on Deutsche Post's envelope rules), inside the outer margins."""
        width, _ = self.page_size
        return Box(width - OUTER_MARGIN - 74.0, OUTER_MARGIN, 74.0, 40.0)

    def protected_zones(self) -> list[Zone]:
        """The zones that must hold no text on a cover page (the address zone itself is the
        window: only the return line and the recipient lines may be in it, which the tests
        check separately)."""
        width, height = self.page_size
        m = OUTER_MARGIN
        zones = [
            Zone("margin-top", Box(0, 0, width, m), "non-printable edge"),
            Zone("margin-bottom", Box(0, height - m, width, m), "non-printable edge"),
            Zone("margin-left", Box(0, 0, m, height), "non-printable edge"),
            Zone("margin-right", Box(width - m, 0, m, height), "non-printable edge"),
        ]
        zones.append(Zone("postage", self.postage_zone(),
                          "the envelope's franking corner: kept clear on the page too"))
        if self.franking is not None:
            zones.append(Zone("franking", self.franking,
                              "postal endorsements and franking printed by the post/provider"))
        return zones


def _din(key: str, label: str, top: float) -> WindowStandard:
    # DIN 5008 address field: 85 × 45 mm, 20 mm from the left; return-address zone 5 mm,
    # Zusatz- und Vermerkzone to 17.7 mm, Anschriftzone 27.3 mm (sources in the docstring).
    window = Box(20.0, top, 85.0, 45.0)
    return WindowStandard(
        key=key, label=label, paper="A4", window=window,
        return_line=Box(25.0, top + 1.0, 75.0, 4.0),
        franking=Box(20.0, top + 5.0, 85.0, 12.7),
        # text at 25 mm (DIN 5008's left text margin), 5 mm clear of the field's right edge,
        # SAFETY above the field's bottom edge.
        recipient=Box(25.0, top + 17.7, 75.0, 45.0 - 17.7 - SAFETY),
        side="left",
    )


STANDARDS: dict[str, WindowStandard] = {
    "din5008a": _din("din5008a", "DIN 5008 form A (left window, high)", 27.0),
    "din5008b": _din("din5008b", "DIN 5008 form B (left window, low)", 45.0),
    # SN 010130: address 118 mm from the left, 60 mm from the top (Pingen/Odoo figure); the
    # franking band is Pingen's 20 mm postage area above it; the return line tops the window.
    "sn010130": WindowStandard(
        key="sn010130", label="SN 010130 (Switzerland, right window)", paper="A4",
        window=Box(113.0, 45.0, 85.0, 45.0),
        return_line=Box(118.0, 46.0, 75.0, 4.0),
        franking=Box(113.0, 50.5, 85.0, 9.0),
        recipient=Box(118.0, 60.0, 75.0, 90.0 - 60.0 - SAFETY),
        side="right",
    ),
    # UK DL window on A4: 20 mm from the left, the always-visible band 50..84 mm.
    "uk_dl": WindowStandard(
        key="uk_dl", label="UK DL window (left)", paper="A4",
        window=Box(20.0, 50.0, 90.0, 34.0),
        return_line=Box(24.0, 51.0, 82.0, 3.5),
        franking=None,
        recipient=Box(24.0, 55.5, 82.0, 84.0 - 55.5 - SAFETY),
        side="left",
    ),
    # US #10 window on US Letter: 7/8 in from the left, 2 in from the top, 4 1/2 × 1 1/8 in.
    "us10": WindowStandard(
        key="us10", label="US #10 window (left)", paper="LETTER",
        window=Box(7 / 8 * INCH, 2 * INCH, 4.5 * INCH, 1.125 * INCH),
        return_line=Box(7 / 8 * INCH + SAFETY, 2 * INCH + 0.8, 4.5 * INCH - 2 * SAFETY, 3.2),
        franking=None,
        recipient=Box(7 / 8 * INCH + SAFETY, 2 * INCH + 4.5, 4.5 * INCH - 2 * SAFETY,
                      1.125 * INCH - 4.5 - SAFETY),
        side="left",
    ),
}


class UnknownStandard(KeyError):
    """No envelope-window standard by that key."""


def standard(key: str) -> WindowStandard:
    try:
        return STANDARDS[key]
    except KeyError:
        known = ", ".join(sorted(STANDARDS))
        raise UnknownStandard(f"No envelope standard {key!r}; choose one of {known}.") from None


def address_block_css(key: str) -> str:
    """CSS placing `.letter-return` and `.letter-address` of a document's first page in the
    window of `key`'s envelope, for document templates that carry their own address (the
    page must have `@page { margin: 0 }` or position these relative to the page box)."""
    std = standard(key)
    r, a = std.return_line, std.recipient
    return (
        f".letter-return {{ position: absolute; left: {r.x}mm; top: {r.y}mm; "
        f"width: {r.width}mm; height: {r.height}mm; overflow: hidden; white-space: nowrap; }}\n"
        f".letter-address {{ position: absolute; left: {a.x}mm; top: {a.y}mm; "
        f"width: {a.width}mm; height: {a.height}mm; overflow: hidden; }}\n"
    )
