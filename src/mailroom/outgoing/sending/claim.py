"""Claiming: lease the most urgent due mails to one worker, before any network I/O.

One short transaction (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite's IMMEDIATE transaction
serialises claimers) that commits on return; an idle poll takes no write lock.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import connection, transaction

from mailroom.outgoing.models import OutgoingMail

State = OutgoingMail.State


def claim_due(owner: str, now: datetime, batch_size: int, lease: timedelta) -> dict[int, str]:
    """Lease up to `batch_size` due mails to `owner`, committed on return:
    {id: the state it had}."""
    due = OutgoingMail.objects.filter(state__in=OutgoingMail.WAITING_STATES,
                                      next_attempt_at__lte=now)
    if not due.exists():  # idle polls take no write lock
        return {}
    with transaction.atomic():
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True)
        claimed = dict(due.order_by("priority", "next_attempt_at", "id")
                       .values_list("id", "state")[:batch_size])
        if claimed:
            OutgoingMail.objects.filter(pk__in=list(claimed)).update(
                state=State.SENDING, lease_owner=owner, lease_expires_at=now + lease)
    return claimed
