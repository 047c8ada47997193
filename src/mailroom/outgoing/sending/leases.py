"""Leases on the outbox: how long a worker may hold mails it is sending, and what happens to
the mails of a worker that died.

A claim leases mails to a worker for `LEASE`. While its pass runs, the worker renews the
lease of the mails it still owns every `HEARTBEAT` (`renew_leases`), so a pass may last as
long as its connections need while the lease stays short. A worker killed mid-pass stops
renewing: within `LEASE` its lease runs out, and the next housekeeping of any worker
(`reap_leases`, every 10 s) makes those mails `uncertain` and due at once, so they go out
again within about a minute — with the same Message-ID, flagged as possibly arrived twice.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import DatabaseError, transaction

from mailroom.outgoing.models import OutgoingMail
from mailroom.outgoing.sending import rate_limits

log = logging.getLogger("mailroom.sender")

State = OutgoingMail.State

LEASE = timedelta(seconds=45)
HEARTBEAT = LEASE / 4  # a missed beat or two (a busy database) still keeps the lease
HOUSEKEEPING_EVERY = 10.0  # seconds between lease reaping passes


def renew_leases(owner: str, now: datetime, lease: timedelta = LEASE) -> int:
    """Extend the lease of the mails `owner` is sending and still owns; returns how many.

    Only rows still `sending` under this owner are touched: a mail whose lease was already
    reaped (uncertain, owned by nobody) or claimed by another worker stays theirs. One short
    UPDATE in its own transaction (an IMMEDIATE one on SQLite, so it never waits to upgrade a
    read lock); a database too busy to answer is logged and tried again at the next beat.
    """
    try:
        with transaction.atomic():
            return OutgoingMail.objects.filter(state=State.SENDING, lease_owner=owner).update(
                lease_expires_at=now + lease)
    except DatabaseError as exc:
        log.warning("sender %s: could not renew its leases (%s); trying again", owner, exc)
        return 0


def reap_leases(now: datetime) -> int:
    """Mails whose worker died mid-send: uncertain (they may have gone out) and due again."""
    count = OutgoingMail.objects.filter(state=State.SENDING, lease_expires_at__lt=now).update(
        state=State.UNCERTAIN, was_uncertain=True, next_attempt_at=now, lease_owner="",
        lease_expires_at=None,
        failure_reason="The worker sending it stopped before recording the outcome; it is sent "
                       "again with the same Message-ID and may arrive twice.")
    if count:
        log.warning("sender: %d mails were left mid-send by a stopped worker; they are now "
                    "uncertain and will be sent again", count)
    if int(now.timestamp()) % 3600 < HOUSEKEEPING_EVERY:
        rate_limits.prune_rate_windows(now)
    return count
