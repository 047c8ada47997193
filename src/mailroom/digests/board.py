"""The numbers of a digest: KPI values per period, computed once and shared.

A KPI's value depends only on the company and the window (core.kpis), and whether a user sees
it only on their permissions — so a `Board` computes each (company, KPI, period) once, draws
each trend chart once, and hands every recipient the rows they may see. One Board lives for
one digest run (or one preview, or one API call); 1,000 recipients cost one computation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal

from mailroom.core import kpis as registry
from mailroom.core.kpis import Kpi, Number
from mailroom.digests.periods import Period

log = logging.getLogger("mailroom.digests")
HISTORY = 12  # periods in a trend chart


@dataclass(frozen=True)
class KpiRow:
    kpi: Kpi
    period: Period
    value: Number | None  # None: could not be computed (logged), shown as "not available"
    previous: Number | None
    history: tuple[Number | None, ...]  # HISTORY values, oldest first; the last is `value`
    url: str  # the list behind the number, a path

    @property
    def change(self) -> float | None:
        """Change against the previous period in %, None when there is nothing to compare."""
        if self.value is None or self.previous in (None, 0):
            return None
        return float((Decimal(str(self.value)) - Decimal(str(self.previous)))
                     / abs(Decimal(str(self.previous))) * 100)

    @property
    def direction(self) -> str:
        """"up", "down" or "flat"."""
        if self.value is None or self.previous is None or self.value == self.previous:
            return "flat"
        return "up" if self.value > self.previous else "down"

    @property
    def good(self) -> bool | None:
        """True when the change is good news (green), False when bad (red), None if flat."""
        if self.direction == "flat":
            return None
        return (self.direction == "up") == self.kpi.higher_is_better


class Board:
    def __init__(self, *, chart_cache: bool = True):
        self._values: dict[tuple, Number | None] = {}
        self._charts: dict[tuple, bytes] = {}
        self._rows: dict[tuple, KpiRow] = {}
        self._memo: dict[tuple, object] = {}
        self._kpis: dict[int, dict[str, Kpi]] = {}  # company -> key -> KPI (custom included)
        self.chart_cache = chart_cache
        self.computed = 0  # how many values were really computed (benchmarks print it)
        self.charts_drawn = 0

    def value(self, company, kpi: Kpi, period: Period) -> Number | None:
        key = (company.pk, kpi.key, period.periodicity, period.first_day)
        if key not in self._values:
            self.computed += 1
            try:
                self._values[key] = kpi.compute(company, period.local_start, period.local_end)
            except Exception:  # one broken KPI never stops a digest: shown as not available
                log.exception("digests: KPI %s failed for company %s, %s %s", kpi.key,
                              company.pk, period.periodicity, period.first_day)
                self._values[key] = None
        return self._values[key]

    def row(self, company, kpi: Kpi, period: Period) -> KpiRow:
        key = (company.pk, kpi.key, period.periodicity, period.first_day)
        if key not in self._rows:
            history = tuple(self.value(company, kpi, p) for p in period.history(HISTORY))
            self._rows[key] = KpiRow(kpi=kpi, period=period, value=history[-1],
                                     previous=history[-2], history=history,
                                     url=kpi.url(period.local_start, period.local_end))
        return self._rows[key]

    def kpis_for(self, company, keys, user) -> list[Kpi]:
        """The KPIs of `keys` that `user` may see, in order; unknown keys are skipped."""
        if company.pk not in self._kpis:
            self._kpis[company.pk] = {k.key: k for k in registry.for_company(company)}
        known = self._kpis[company.pk]
        return [known[key] for key in keys if key in known and known[key].visible(user)]

    def rows(self, company, keys, user, period: Period) -> list[KpiRow]:
        """What `user` sees for `keys`: only KPIs they may see, nothing of the others."""
        return [self.row(company, kpi, period) for kpi in self.kpis_for(company, keys, user)]

    def memo(self, key: tuple, make):
        """`make()` once per `key` for this board: what every recipient sharing the key gets
        alike (the formatted KPI section of one language and permission set, the company's
        sender address)."""
        if not self.chart_cache:  # the benchmark's comparison: everything per recipient
            return make()
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]

    def chart(self, row: KpiRow, draw) -> bytes:
        """The trend chart of `row`, drawn by `draw(row)` once per company, KPI and period."""
        key = (row.kpi.key, row.period.periodicity, row.period.first_day, row.history)
        if self.chart_cache and key in self._charts:
            return self._charts[key]
        self.charts_drawn += 1
        png = draw(row)
        if self.chart_cache:
            self._charts[key] = png
        return png
