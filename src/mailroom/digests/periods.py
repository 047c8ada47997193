"""Calendar periods in a company's timezone, and when a digest runs.

A period is a calendar day, ISO week (Monday to Monday), month or quarter, in the company's
timezone, as a half-open window [start, end) of aware datetimes. Boundaries are local
midnights, so a day across a DST change lasts 23 or 25 hours and a week 167 or 169 — the
window is what the office calls "yesterday" or "last week", never a sliding 24 h.

A digest that runs at `send_time` on the first day after a period reports that period: the
Monday 08:00 weekly digest shows last Monday to Sunday. `last_complete(now)` is the period
a run at `now` reports, so a run that happens late (a worker was down) still reports the
latest complete period — once — instead of replaying the missed ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DAILY, WEEKLY, MONTHLY, QUARTERLY = "daily", "weekly", "monthly", "quarterly"
PERIODICITIES = (DAILY, WEEKLY, MONTHLY, QUARTERLY)


def _zone(tz: str | ZoneInfo) -> ZoneInfo:
    return tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz or "UTC")


def _first_day(periodicity: str, day: date) -> date:
    """The first local day of the period that contains `day`."""
    if periodicity == DAILY:
        return day
    if periodicity == WEEKLY:
        return day - timedelta(days=day.weekday())
    if periodicity == MONTHLY:
        return day.replace(day=1)
    if periodicity == QUARTERLY:
        return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    raise ValueError(f"Unknown periodicity {periodicity!r}")


def _add(periodicity: str, day: date, steps: int) -> date:
    """`day` (a first day) moved by `steps` whole periods."""
    if periodicity == DAILY:
        return day + timedelta(days=steps)
    if periodicity == WEEKLY:
        return day + timedelta(weeks=steps)
    months = {MONTHLY: 1, QUARTERLY: 3}[periodicity] * steps
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True)
class Period:
    periodicity: str
    first_day: date  # local date the period starts on
    tz: str

    @property
    def zone(self) -> ZoneInfo:
        return _zone(self.tz)

    @property
    def start(self) -> datetime:
        return _local_midnight(self.first_day, self.zone)

    @property
    def end(self) -> datetime:
        return _local_midnight(self.next_first_day, self.zone)

    @property
    def local_start(self) -> datetime:
        """`start` in the company's timezone: what KPIs receive (same instant)."""
        return self.start.astimezone(self.zone)

    @property
    def local_end(self) -> datetime:
        return self.end.astimezone(self.zone)

    @property
    def next_first_day(self) -> date:
        return _add(self.periodicity, self.first_day, 1)

    @property
    def last_day(self) -> date:
        return self.next_first_day - timedelta(days=1)

    def shift(self, steps: int) -> Period:
        return Period(self.periodicity, _add(self.periodicity, self.first_day, steps), self.tz)

    def previous(self) -> Period:
        return self.shift(-1)

    def history(self, count: int = 12) -> list[Period]:
        """The `count` periods ending with this one, oldest first."""
        return [self.shift(step) for step in range(1 - count, 1)]

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


def containing(periodicity: str, moment: datetime, tz: str | ZoneInfo) -> Period:
    zone = _zone(tz)
    local_day = moment.astimezone(zone).date()
    return Period(periodicity, _first_day(periodicity, local_day), zone.key)


def last_complete(periodicity: str, moment: datetime, tz: str | ZoneInfo) -> Period:
    """The latest period that has ended at `moment`."""
    return containing(periodicity, moment, tz).previous()


def _at(day: date, send_time: time, zone: ZoneInfo) -> datetime:
    # a send time that does not exist that day (spring forward) lands an hour later; one that
    # exists twice (fall back) is the first of the two (fold=0)
    return datetime.combine(day, send_time, tzinfo=zone).astimezone(UTC)


def next_run(periodicity: str, send_time: time, tz: str | ZoneInfo,
             after: datetime) -> datetime:
    """The first run strictly after `after`: `send_time` on the first day of a period."""
    zone = _zone(tz)
    first = _first_day(periodicity, after.astimezone(zone).date())
    candidate = _at(first, send_time, zone)
    while candidate <= after:
        first = _add(periodicity, first, 1)
        candidate = _at(first, send_time, zone)
    return candidate
