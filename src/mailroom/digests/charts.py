"""The small trend chart beside each number of a digest email: the last 12 periods as bars.

One PNG serves every recipient and language: no text on it (the numbers are in the image's
alt text and next to it), one neutral palette (the board caches charts per KPI and period,
not per company colour), the last bar darker. 240×60 CSS pixels drawn at 2x so it stays crisp
on high-density screens. One Figure is kept and redrawn (a new one costs more than the
drawing); a lock keeps threads from drawing on it at once.
"""

from __future__ import annotations

import io
import threading
from decimal import Decimal

WIDTH, HEIGHT = 240, 60  # CSS pixels
SCALE = 2  # drawn at 2x for retina screens
BAR = "#cbd5e1"  # slate-300
LAST = "#334155"  # slate-700: the period the email is about
MISSING = "#eef1f5"  # a period whose value could not be computed
BASELINE = "#e2e8f0"

_lock = threading.Lock()
_chart = None  # (canvas, axes, bars, baseline): built once, redrawn for every chart


def _number(value) -> float | None:
    if value is None:
        return None
    return float(value) if isinstance(value, int | float | Decimal) else None


def _chart_for(count: int):
    """The kept Figure with `count` bars (rebuilt only when the count changes)."""
    global _chart
    if _chart is None or len(_chart[2]) != count:
        # heavy import kept off start-up
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        figure = Figure(figsize=(WIDTH / 100, HEIGHT / 100), dpi=100 * SCALE)
        figure.patch.set_alpha(0)
        canvas = FigureCanvasAgg(figure)
        axes = figure.add_axes((0, 0, 1, 1))
        axes.set_axis_off()
        bars = axes.bar(range(count), [0] * count, width=0.72, linewidth=0)
        baseline = axes.axhline(0, color=BASELINE, linewidth=1)
        axes.set_xlim(-0.6, max(count, 1) - 0.4)
        _chart = canvas, axes, list(bars), baseline
    return _chart


def draw_values(values) -> bytes:
    """PNG bytes of `values` (oldest first, None for a missing one) as bars."""
    numbers = [_number(v) for v in values]
    known = [n for n in numbers if n is not None]
    top, bottom = max([0.0, *known]), min([0.0, *known])
    span = (top - bottom) or 1.0
    # a missing or zero value still shows a sliver, so the slots read as periods
    sliver = span * 0.04
    shapes = []
    for index, number in enumerate(numbers):
        if number is None:
            shapes.append((sliver, MISSING))
        else:
            height = number if abs(number) >= sliver else (sliver if number >= 0 else -sliver)
            shapes.append((height, LAST if index == len(numbers) - 1 else BAR))
    with _lock:
        canvas, axes, bars, _ = _chart_for(len(shapes))
        for bar, (height, colour) in zip(bars, shapes, strict=True):
            bar.set_height(height)
            bar.set_color(colour)
        axes.set_ylim(bottom - span * 0.06, top + span * 0.06)
        buffer = io.BytesIO()
        canvas.print_png(buffer, metadata={"Software": None})
    return buffer.getvalue()


def draw(row) -> bytes:
    """The chart of a board.KpiRow (passed to `Board.chart(row, draw)`)."""
    return draw_values(row.history)
