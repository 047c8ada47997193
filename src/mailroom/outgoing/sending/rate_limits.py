"""Rate limits per minute, hour and day that hold across all workers and machines: sends are
reserved in RateWindow rows with a conditional UPDATE (count + n <= limit) before any
connection is opened. What does not fit waits for the window's end; it never fails.

No network I/O here; each function is one short transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F

from mailroom.outgoing.models import MailServer, RateWindow

# unit, seconds, MailServer field holding the limit
RATE_UNITS = (
    (RateWindow.Unit.MINUTE, 60, "rate_per_minute"),
    (RateWindow.Unit.HOUR, 3600, "rate_per_hour"),
    (RateWindow.Unit.DAY, 86400, "rate_per_day"),
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def window_bounds(seconds: int, now: datetime) -> tuple[datetime, datetime]:
    elapsed = int((now - _EPOCH).total_seconds())
    start = _EPOCH + timedelta(seconds=elapsed - elapsed % seconds)
    return start, start + timedelta(seconds=seconds)


@dataclass
class Reservation:
    """Sends reserved on a server. `granted` may be less than asked; the rest waits until
    `wait_until` (the end of the window that is full)."""

    server: MailServer
    granted: int
    wait_until: datetime | None = None
    windows: list[tuple[str, datetime]] = field(default_factory=list)

    def release(self, unused: int) -> None:
        """Give back sends that were reserved but not made (the server could not be used)."""
        unused = min(unused, self.granted)
        if unused <= 0 or not self.windows:
            return
        with transaction.atomic():
            for unit, start in self.windows:
                RateWindow.objects.filter(server=self.server, unit=unit, window_start=start,
                                          count__gte=unused).update(count=F("count") - unused)
        self.granted -= unused


def _window_row(server: MailServer, unit: str, start: datetime) -> RateWindow:
    try:
        with transaction.atomic():  # a savepoint: a concurrent insert may win the race
            return RateWindow.objects.get_or_create(server=server, unit=unit,
                                                    window_start=start)[0]
    except IntegrityError:
        return RateWindow.objects.get(server=server, unit=unit, window_start=start)


def reserve(server: MailServer, wanted: int, now: datetime) -> Reservation:
    """Reserve up to `wanted` sends within every rate limit of `server`, atomically.

    Each window row is bumped with `UPDATE … SET count = count + n WHERE count <= limit - n`:
    two workers can never both take the last places, on PostgreSQL (the second UPDATE re-checks
    its WHERE after the first commits) or SQLite (writers are serialised).
    """
    limits = [(unit, *window_bounds(seconds, now), getattr(server, attr))
              for unit, seconds, attr in RATE_UNITS if getattr(server, attr)]
    if not limits or wanted <= 0:
        return Reservation(server, max(wanted, 0))
    windows = [(unit, start) for unit, start, _, _ in limits]
    for _ in range(10):
        with transaction.atomic():
            rows = [(_window_row(server, unit, start), end, limit)
                    for unit, start, end, limit in limits]
            room = {row.pk: limit - row.count for row, _, limit in rows}
            grant = min(wanted, *room.values())
            full_until = max((end for row, end, _ in rows if room[row.pk] <= grant), default=None)
            if grant <= 0:
                return Reservation(server, 0, full_until, windows)
            taken = [RateWindow.objects.filter(pk=row.pk, count__lte=limit - grant).update(
                count=F("count") + grant) for row, _, limit in rows]
            if all(taken):
                return Reservation(server, grant, full_until if grant < wanted else None,
                                   windows)
            transaction.set_rollback(True)  # another worker took places meanwhile: re-read
    return Reservation(server, 0, now + timedelta(seconds=1), windows)


def prune_rate_windows(now: datetime) -> int:
    """Forget windows that ended more than a day ago."""
    return RateWindow.objects.filter(window_start__lt=now - timedelta(days=2)).delete()[0]
