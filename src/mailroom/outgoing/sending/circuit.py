"""A circuit breaker per server, shared by every worker through the database: a server that
could not be used (DNS, TCP, TLS, authentication, a refusing greeting) is skipped for a
cool-down that doubles with each consecutive failure; one success closes it.

No network I/O here; each write is one short transaction."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F

from mailroom.outgoing.models import MailServer

CIRCUIT_BASE = timedelta(seconds=15)
CIRCUIT_MAX = timedelta(minutes=15)


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
