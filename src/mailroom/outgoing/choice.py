"""Which server sends a mail, whether it may send right now, and how much.

- `candidates(mail, servers)`: the explicit server of the mail, else the active servers of the
  mail's company and purpose whose from-filter allows the sender — exact address before
  domain before "any sender", then by `sequence` — best first.
- A circuit breaker per server, shared by every worker through the database: a server that
  could not be used (DNS, TCP, TLS, authentication, a refusing greeting) is skipped for a
  cool-down that doubles with each consecutive failure; one success closes it.
- Rate limits per minute, hour and day that hold across all workers and machines: sends are
  reserved in RateWindow rows with a conditional UPDATE (count + n <= limit) before any
  connection is opened. What does not fit waits for the window's end; it never fails.

No network I/O here; each function is one short transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from functools import lru_cache

from django.db import IntegrityError, transaction
from django.db.models import F

from mailroom.outgoing.models import MailServer, OutgoingMail, Purpose, RateWindow

CIRCUIT_BASE = timedelta(seconds=15)
CIRCUIT_MAX = timedelta(minutes=15)

# unit, seconds, MailServer field holding the limit
RATE_UNITS = (
    (RateWindow.Unit.MINUTE, 60, "rate_per_minute"),
    (RateWindow.Unit.HOUR, 3600, "rate_per_hour"),
    (RateWindow.Unit.DAY, 86400, "rate_per_day"),
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --- matching ------------------------------------------------------------------------------

@lru_cache(maxsize=4096)
def sender_address(email_from: str) -> str:
    """The bare address of a From value ("Acme <billing@acme.example>" → billing@…)."""
    return parseaddr(email_from)[1].strip().lower() or email_from.strip().lower()


def filter_rank(server: MailServer, address: str) -> int | None:
    """0 = the address is listed, 1 = its domain is, 2 = the server takes any sender;
    None = the from-filter does not allow this sender."""
    entries = server.filter_entries()
    if not entries:
        return 2
    domain = address.rpartition("@")[2]
    rank = None
    for entry in entries:
        if "@" in entry and not entry.startswith("@"):
            if entry == address:
                return 0
        elif entry.lstrip("@") == domain:
            rank = 1
    return rank


def candidates(mail: OutgoingMail, servers: Iterable[MailServer]) -> list[MailServer]:
    """The servers that may send `mail`, best first. `servers`: the company's servers."""
    servers = list(servers)
    if mail.server_id:
        return [s for s in servers if s.pk == mail.server_id and s.active]
    address = sender_address(mail.email_from)
    ranked = []
    for server in servers:
        if not server.active or server.company_id != mail.company_id:
            continue
        if server.purpose not in (mail.purpose, Purpose.BOTH):
            continue
        rank = filter_rank(server, address)
        if rank is not None:
            ranked.append(((rank, server.sequence, server.pk), server))
    return [server for _, server in sorted(ranked, key=lambda pair: pair[0])]


# --- circuit breaker -----------------------------------------------------------------------

def circuit_open(server: MailServer, now: datetime) -> bool:
    return server.circuit_open_until is not None and server.circuit_open_until > now


def cool_down(consecutive_failures: int) -> timedelta:
    """15 s after the first failure, doubling, at most 15 minutes."""
    steps = max(consecutive_failures - 1, 0)
    return min(CIRCUIT_BASE * (2 ** min(steps, 20)), CIRCUIT_MAX)


def record_failure(server: MailServer, reason: str, now: datetime) -> datetime:
    """Count a failure to use `server` and open its circuit; returns when it closes again."""
    with transaction.atomic():
        MailServer.objects.filter(pk=server.pk).update(
            consecutive_failures=F("consecutive_failures") + 1, last_error=reason[:2000])
        failures = MailServer.objects.filter(pk=server.pk).values_list(
            "consecutive_failures", flat=True).first() or 1
        until = now + cool_down(failures)
        MailServer.objects.filter(pk=server.pk).update(circuit_open_until=until)
    server.consecutive_failures, server.circuit_open_until = failures, until
    server.last_error = reason[:2000]
    return until


def record_success(server: MailServer) -> None:
    """Close the circuit. Writes only when it was not already closed."""
    if server.consecutive_failures or server.circuit_open_until:
        MailServer.objects.filter(pk=server.pk).update(
            consecutive_failures=0, circuit_open_until=None, last_error="")
        server.consecutive_failures, server.circuit_open_until = 0, None


# --- rate limits ---------------------------------------------------------------------------

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
