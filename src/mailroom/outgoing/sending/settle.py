"""Recording what a sender pass did, in bulk: a handful of statements per batch.

Rows with identical changes share one UPDATE (in the common case every mail of a batch was
sent through one server: one UPDATE for the mails, one for their recipients, one INSERT for
the attempts). Everything happens in one transaction that only touches mails still leased to
this worker, so a pass that outlived its lease cannot overwrite another worker's results.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime

from django.db import connection, transaction

from mailroom.chatter.models import Notification
from mailroom.chatter.services import post_message
from mailroom.outgoing.hooks import run_delivery_hooks
from mailroom.outgoing.models import OutgoingMail, OutgoingRecipient, SendAttempt
from mailroom.outgoing.sending.decide import RetryClock, Settlement, decide
from mailroom.outgoing.sending.jobs import Job, attempt_row

log = logging.getLogger("mailroom.sender")

State = OutgoingMail.State
Status = OutgoingRecipient.Status
MAX_GROUPS = 20  # beyond this many distinct changes, one bulk_update instead of many UPDATEs


def _update(model, changes: dict[int, dict]) -> None:
    """Apply {pk: {field: value}} (same fields for every pk) in as few statements as can be."""
    if not changes:
        return
    groups: dict[tuple, list[int]] = defaultdict(list)
    for pk, fields in changes.items():
        groups[tuple(fields.items())].append(pk)
    if len(groups) <= MAX_GROUPS:
        for key, pks in groups.items():
            for start in range(0, len(pks), 500):
                model.objects.filter(pk__in=pks[start:start + 500]).update(**dict(key))
        return
    names = list(next(iter(changes.values())))
    objs = [model(pk=pk, **fields) for pk, fields in changes.items()]
    model.objects.bulk_update(objs, names, batch_size=200)


def settle(jobs: list[Job], now: datetime, *, owner: str,
           rand: Callable[[], float] | None = None) -> None:
    """Record the outcome of a pass for the mails still leased to `owner`: what `decide`
    says each one becomes, in as few statements as can be."""
    if not jobs:
        return
    with transaction.atomic():
        leased = OutgoingMail.objects.filter(pk__in=[j.mail.pk for j in jobs],
                                             state=State.SENDING, lease_owner=owner)
        if connection.features.has_select_for_update:
            leased = leased.select_for_update()
        mine = set(leased.values_list("pk", flat=True))
        lost = [j.mail.pk for j in jobs if j.mail.pk not in mine]
        if lost:
            log.warning("sender %s: lease lost on mails %s before their results were recorded; "
                        "they will be sent again as uncertain", owner, lost[:20])
        retry_at = RetryClock(now, rand)
        for job in jobs:
            _record_silent_attempt(job, now, owner)
        decided = [(job, decide(job, now, retry_at=retry_at)) for job in jobs
                   if job.mail.pk in mine]
        _write(decided, now)


def _record_silent_attempt(job: Job, now: datetime, owner: str) -> None:
    """An attempt counts (`job.attempted`) even when no conversation left a row — no server
    could be reached, none matched, or the pass broke before sending. It gets its row here,
    so the mail's attempt count and its list of attempts always agree."""
    if job.attempted and not job.attempts and not job.released:
        job.attempts.append(attempt_row(job, job.used_server, now, job.spent_ms, owner))


def _write(decided: Iterable[tuple[Job, Settlement]], now: datetime) -> None:
    """Write the settlements: grouped UPDATEs, one INSERT of attempts, then the notices."""
    recipients: dict[int, dict] = {}
    mails: dict[int, dict] = {}
    released: dict[int, dict] = {}
    attempts: list[SendAttempt] = []
    notifications: list[tuple[int, int, str, str]] = []
    notices: list[tuple[OutgoingMail, str]] = []
    delivered: list[OutgoingMail] = []
    deletes: list[int] = []
    for job, settlement in decided:
        if settlement.released:
            released[settlement.mail_id] = settlement.mail_fields()
            continue
        for recipient in job.recipients:  # the in-memory rows follow what was decided
            if recipient.pk in settlement.recipients:
                recipient.status = settlement.recipients[recipient.pk]["status"]
        recipients.update(settlement.recipients)
        mails[settlement.mail_id] = settlement.mail_fields()
        notifications += settlement.notifications
        attempts += settlement.attempts
        if settlement.notify_author:
            notices.append((job.mail, settlement.reason))
        if settlement.run_hooks:
            delivered.append(job.mail)
        if settlement.delete:
            deletes.append(settlement.mail_id)
    _update(OutgoingRecipient, recipients)
    _update(OutgoingMail, mails)
    _update(OutgoingMail, released)
    if attempts:
        SendAttempt.objects.bulk_create(attempts, batch_size=500)
    by_status: dict[tuple[str, str], dict[int, list[int]]] = defaultdict(
        lambda: defaultdict(list))
    for message_id, partner_id, status, reason in notifications:
        by_status[(status, reason[:2000])][message_id].append(partner_id)
    for (status, reason), per_message in by_status.items():
        for message_id, partners in per_message.items():
            Notification.objects.filter(message_id=message_id,
                                        partner_id__in=partners).update(
                status=status, failure_reason=reason, updated_at=now)
    for mail, reason in notices:
        _tell_author(mail, reason)
    if delivered:
        run_delivery_hooks(delivered)
    if deletes:
        OutgoingMail.objects.filter(pk__in=deletes).delete()


def _tell_author(mail: OutgoingMail, reason: str) -> None:
    """One notice per failed mail: a note on its record's chatter, else the log."""
    addresses = ", ".join(r.address for r in mail.recipients.all()[:5])
    text = (f"The email “{mail.subject or '(no subject)'}” to {addresses} could not be "
            f"delivered: {reason}")
    record = mail.record if mail.content_type_id and mail.object_id else None
    if record is not None:
        try:
            with transaction.atomic():
                post_message(record, actor=None, body_text=text, message_type="note",
                             notify=False)
            return
        except Exception:  # the record type may not have a chatter; fall back to the log
            log.exception("sender: could not post the failure notice on %s", record)
    log.warning("mail %s (author %s): %s", mail.pk, mail.author_id, text)
