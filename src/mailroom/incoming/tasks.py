"""Worker steps and cron tasks of incoming mail.

router: move what the gateway spooled (SQLite: incoming.intake), then route what the gateway,
the fetchers and `deliver` stored (incoming.router).
fetcher: claim ONE due mailbox with a lease (committed before any network I/O), fetch it,
record the outcome. Several workers never fetch the same mailbox at once; a worker that dies
mid-fetch leaves a lease that expires, and the next claim simply fetches again (every message
already stored is known by its key).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from mailroom.core.cron import register_task
from mailroom.core.steps import register_step
from mailroom.incoming import fetchers, intake
from mailroom.incoming.models import IncomingServer
from mailroom.incoming.router import route_pending
from mailroom.incoming.services import record_fetch

log = logging.getLogger("mailroom.incoming")
FETCH_LEASE = timedelta(minutes=15)


def claim_server(owner: str, now: datetime | None = None) -> IncomingServer | None:
    """Lease one due, active mailbox to `owner` (the most overdue first), or None."""
    now = now or timezone.now()
    due = IncomingServer.objects.filter(
        Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=now),
        active=True, next_fetch_at__lte=now)
    if not due.exists():  # idle polls take no write lock
        return None
    with transaction.atomic():
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True)
        pk = due.order_by("next_fetch_at", "pk").values_list("pk", flat=True).first()
        if pk is None:
            return None
        IncomingServer.objects.filter(pk=pk).update(lease_owner=owner[:100],
                                                    lease_expires_at=now + FETCH_LEASE)
    return IncomingServer.objects.select_related("company").get(pk=pk)


def fetch_server(server: IncomingServer) -> fetchers.FetchResult:
    """Fetch one (claimed) mailbox and record the outcome; more mail waiting → due again."""
    result = fetchers.fetch(server)
    record_fetch(server, count=result.stored, error=result.problems)
    if result.more and not result.problems:
        IncomingServer.objects.filter(pk=server.pk).update(next_fetch_at=timezone.now())
    return result


@register_step("router")
def router_step(worker_name: str) -> bool:
    try:  # what the gateway spooled on SQLite, into the database first
        moved = intake.move()
    except Exception:  # the spool stays as it is (nothing is deleted before it is moved)
        log.exception("router %s: could not move the intake spool; trying again", worker_name)
        moved = 0  # and what is already in the database is routed meanwhile
    return route_pending(worker_name) > 0 or moved > 0


@register_step("fetcher")
def fetcher_step(worker_name: str) -> bool:
    server = claim_server(worker_name)
    if server is None:
        return False
    fetch_server(server)
    return True


@register_task("fetch_mail")
def fetch_mail() -> str:
    """Fetch every due mailbox now (for a worker that runs only the cron step)."""
    count = stored = 0
    while (server := claim_server("cron:fetch_mail")) is not None and count < 100:
        stored += fetch_server(server).stored
        count += 1
    return f"fetched {count} mailboxes, {stored} new messages"
