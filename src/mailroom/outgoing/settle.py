"""Recording what a sender pass did, in bulk: a handful of statements per batch.

Rows with identical changes share one UPDATE (in the common case every mail of a batch was
sent through one server: one UPDATE for the mails, one for their recipients, one INSERT for
the attempts). Everything happens in one transaction that only touches mails still leased to
this worker, so a pass that outlived its lease cannot overwrite another worker's results.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime

from django.db import connection, transaction

from mailroom.outgoing import backoff
from mailroom.outgoing.hooks import run_delivery_hooks
from mailroom.outgoing.models import OutgoingMail, OutgoingRecipient, SendAttempt

log = logging.getLogger("mailroom.sender")

State = OutgoingMail.State
Status = OutgoingRecipient.Status
MAX_GROUPS = 20  # beyond this many distinct changes, one bulk_update instead of many UPDATEs


def _first_failure(recipients, results):
    refused = [results[r.pk] for r in recipients if r.pk in results and not results[r.pk].accepted]
    return refused[0] if refused else None


class _Plan:
    def __init__(self, now: datetime, rand: Callable[[], float] | None) -> None:
        self.now = now
        self.rand = rand
        self.delays: dict[int, datetime] = {}
        self.mails: dict[int, dict] = {}
        self.recipients: dict[int, dict] = {}
        self.notifications: list[tuple[int, int, str, str]] = []  # message, partner, status…
        self.notices: list[tuple[OutgoingMail, str]] = []
        self.deletes: list[int] = []
        self.delivered: list[OutgoingMail] = []  # sent now, with a delivery hook to run
        self.attempts: list[SendAttempt] = []
        self.released: dict[int, dict] = {}

    def retry_at(self, attempts: int) -> datetime:
        """One jittered delay per attempt count and pass, so deferred mails stay batched."""
        if attempts not in self.delays:
            delay = (backoff.retry_delay(attempts, rand=self.rand) if self.rand
                     else backoff.retry_delay(attempts))
            self.delays[attempts] = self.now + delay
        return self.delays[attempts]

    def add(self, job) -> None:
        mail, now = job.mail, self.now
        if job.released:  # not reached this pass: as it was, still first in line
            self.released[mail.pk] = dict(state=job.previous_state, lease_owner="",
                                          lease_expires_at=None)
            return
        results = job.results
        for recipient in job.pending:
            result = results.get(recipient.pk)
            if result is None:
                continue
            if result.accepted:
                recipient.status = Status.SENT
                fields = (Status.SENT, result.code, "", "", now)
            elif result.temporary:
                fields = (Status.PENDING, result.code, result.failure_type, result.reason, None)
            else:
                recipient.status = Status.FAILED
                fields = (Status.FAILED, result.code, result.failure_type, result.reason, None)
            self.recipients[recipient.pk] = dict(zip(
                ("status", "smtp_code", "failure_type", "failure_reason", "sent_at"), fields,
                strict=True))
            if mail.chatter_message_id and recipient.partner_id and fields[0] != Status.PENDING:
                self.notifications.append((mail.chatter_message_id, recipient.partner_id,
                                           "sent" if result.accepted else "exception",
                                           result.reason))

        attempts = mail.attempt_count + (1 if job.attempted else 0)
        failure_type, reason = job.failure_type, job.reason
        pending = [r for r in job.recipients if r.status == Status.PENDING]
        next_attempt_at = now
        gave_up = False
        if job.wait_until is not None and not job.attempted:
            state, next_attempt_at = State.DEFERRED, job.wait_until
        elif pending:
            first = _first_failure(pending, results)
            if first is not None:
                failure_type, reason = first.failure_type, first.reason
            if backoff.given_up(mail.scheduled_at or mail.created_at, now):
                reason = (f"Given up after {backoff.retry_lifetime().days} days of retries: "
                          f"{reason}")
                for recipient in pending:
                    recipient.status = Status.FAILED
                    self.recipients[recipient.pk] = dict(
                        status=Status.FAILED, smtp_code=self.recipients.get(
                            recipient.pk, {}).get("smtp_code"), failure_type=failure_type,
                        failure_reason=reason, sent_at=None)
                    if mail.chatter_message_id and recipient.partner_id:
                        self.notifications.append((mail.chatter_message_id,
                                                   recipient.partner_id, "exception", reason))
                state, gave_up = None, True
            else:
                state, next_attempt_at = State.DEFERRED, self.retry_at(attempts)
        else:
            state = None
        if state is None:  # every recipient has its outcome
            sent = [r for r in job.recipients if r.status == Status.SENT]
            failed = [r for r in job.recipients if r.status == Status.FAILED]
            first = _first_failure(failed, results)
            if gave_up:
                pass
            elif first is not None:
                failure_type, reason = first.failure_type, first.reason
            elif failed:
                failure_type, reason = failed[0].failure_type, failed[0].failure_reason
            if sent:
                state = State.SENT
                if failed:
                    reason = (f"{len(failed)} of {len(job.recipients)} recipients not reached: "
                              f"{reason}")
                else:
                    failure_type = reason = ""
            else:
                state = State.EXCEPTION
        notify = state == State.EXCEPTION and not mail.author_notified
        if notify:
            self.notices.append((mail, reason))
        used = job.used_server.pk if job.used_server else mail.used_server_id
        self.mails[mail.pk] = dict(
            state=state, failure_type=failure_type, failure_reason=reason[:4000],
            next_attempt_at=next_attempt_at, used_server_id=used, attempt_count=attempts,
            sent_at=(mail.sent_at or now) if state == State.SENT else None,
            lease_owner="", lease_expires_at=None, author_notified=mail.author_notified or notify)
        if state == State.SENT and mail.on_sent:
            self.delivered.append(mail)
        if state == State.SENT and mail.auto_delete:
            self.deletes.append(mail.pk)
        else:
            self.attempts += job.attempts


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


def settle(jobs, now: datetime, *, owner: str,
           rand: Callable[[], float] | None = None) -> None:
    """Record the outcome of a pass for the mails still leased to `owner`."""
    from mailroom.chatter.models import Notification

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
        plan = _Plan(now, rand)
        for job in jobs:
            if job.mail.pk in mine:
                plan.add(job)
        _update(OutgoingRecipient, plan.recipients)
        _update(OutgoingMail, plan.mails)
        _update(OutgoingMail, plan.released)
        if plan.attempts:
            SendAttempt.objects.bulk_create(plan.attempts, batch_size=500)
        by_status: dict[tuple[str, str], dict[int, list[int]]] = defaultdict(
            lambda: defaultdict(list))
        for message_id, partner_id, status, reason in plan.notifications:
            by_status[(status, reason[:2000])][message_id].append(partner_id)
        for (status, reason), per_message in by_status.items():
            for message_id, partners in per_message.items():
                Notification.objects.filter(message_id=message_id,
                                            partner_id__in=partners).update(
                    status=status, failure_reason=reason, updated_at=now)
        for mail, reason in plan.notices:
            _tell_author(mail, reason)
        if plan.delivered:
            run_delivery_hooks(plan.delivered)
        if plan.deletes:
            OutgoingMail.objects.filter(pk__in=plan.deletes).delete()


def _tell_author(mail: OutgoingMail, reason: str) -> None:
    """One notice per failed mail: a note on its record's chatter, else the log."""
    from mailroom.chatter.services import post_message

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
