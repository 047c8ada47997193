"""What a sender pass means for one mail: its next state, reason and due time. Pure.

`decide(job, now)` reads a Job — its mail, recipients, the per-recipient results of this pass,
and what the pass decided without sending (expired, too large, waiting for a rate limit or an
open circuit, released unreached) — and returns a Settlement: every field the database rows
get. No database, no network; settle.py writes what comes back.

- every recipient accepted → sent;
- some accepted, the others refused for good → sent, the reason counts who was not reached;
- a temporary refusal (or no usable server) → deferred, due again after the back-off (one
  jittered delay per attempt count and pass, so mails deferred together stay batched), until
  the retry lifetime is over → failed for good, "Given up after N days of retries";
- every recipient refused for good (or the message cannot go out at all) → failed, and its
  author is told once;
- a rate limit or an open circuit → deferred until then, not counted as an attempt;
- not reached in this pass → back to the state it had, untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from mailroom.outgoing.models import OutgoingMail, OutgoingRecipient, SendAttempt
from mailroom.outgoing.sending import backoff
from mailroom.outgoing.sending.jobs import Job
from mailroom.outgoing.smtp.smtp_errors import RecipientResult

State = OutgoingMail.State
Status = OutgoingRecipient.Status

RECIPIENT_FIELDS = ("status", "smtp_code", "failure_type", "failure_reason", "sent_at")


class RetryClock:
    """One jittered retry time per attempt count for a whole pass."""

    def __init__(self, now: datetime, rand: Callable[[], float] | None = None) -> None:
        self.now = now
        self.rand = rand
        self.delays: dict[int, datetime] = {}

    def __call__(self, attempts: int) -> datetime:
        if attempts not in self.delays:
            delay = (backoff.retry_delay(attempts, rand=self.rand) if self.rand
                     else backoff.retry_delay(attempts))
            self.delays[attempts] = self.now + delay
        return self.delays[attempts]


@dataclass
class Settlement:
    """The outcome of a pass for one mail, as the rows will hold it."""

    mail_id: int
    state: str
    released: bool = False  # not reached: back to `state`, lease dropped, nothing else
    failure_type: str = ""
    reason: str = ""
    next_attempt_at: datetime | None = None
    attempt_count: int = 0
    used_server_id: int | None = None
    sent_at: datetime | None = None
    author_notified: bool = False
    notify_author: bool = False  # post the failure notice now (once per mail)
    recipients: dict[int, dict[str, Any]] = field(default_factory=dict)  # pk -> row fields
    # chatter notifications: (message id, partner id, "sent" | "exception", reason)
    notifications: list[tuple[int, int, str, str]] = field(default_factory=list)
    run_hooks: bool = False  # sent, with a delivery hook
    delete: bool = False  # sent and auto-delete: the mail row goes
    attempts: list[SendAttempt] = field(default_factory=list)  # rows to insert

    def mail_fields(self) -> dict[str, Any]:
        """The outbox row's new values (same field names for every mail of a kind)."""
        if self.released:
            return dict(state=self.state, lease_owner="", lease_expires_at=None)
        return dict(
            state=self.state, failure_type=self.failure_type,
            failure_reason=self.reason[:4000], next_attempt_at=self.next_attempt_at,
            used_server_id=self.used_server_id, attempt_count=self.attempt_count,
            sent_at=self.sent_at, lease_owner="", lease_expires_at=None,
            author_notified=self.author_notified)


def _first_failure(recipients: Sequence[OutgoingRecipient],
                   results: dict[int, RecipientResult]) -> RecipientResult | None:
    refused = [results[r.pk] for r in recipients if r.pk in results and not results[r.pk].accepted]
    return refused[0] if refused else None


def decide(job: Job, now: datetime, *, retry_at: Callable[[int], datetime] | None = None,
           lifetime: timedelta | None = None) -> Settlement:
    """The settlement of `job` at `now`. `retry_at(attempts)`: when a deferred mail is due
    again (default: the back-off from now); `lifetime`: how long retries go on (default:
    settings.MAILROOM_RETRY_LIFETIME). Changes nothing: the job and its rows stay as they are."""
    mail = job.mail
    if job.released:  # not reached this pass: as it was, still first in line
        return Settlement(mail.pk, job.previous_state, released=True)
    retry_at = retry_at or RetryClock(now)
    lifetime = backoff.retry_lifetime() if lifetime is None else lifetime
    settlement = Settlement(mail.pk, State.OUTGOING)
    status = {r.pk: r.status for r in job.recipients}  # the recipients' statuses after this pass
    results = job.results
    for recipient in job.pending:
        result = results.get(recipient.pk)
        if result is None:
            continue
        if result.accepted:
            status[recipient.pk] = Status.SENT
            fields = (Status.SENT, result.code, "", "", now)
        elif result.temporary:
            fields = (Status.PENDING, result.code, result.failure_type, result.reason, None)
        else:
            status[recipient.pk] = Status.FAILED
            fields = (Status.FAILED, result.code, result.failure_type, result.reason, None)
        settlement.recipients[recipient.pk] = dict(zip(RECIPIENT_FIELDS, fields, strict=True))
        if mail.chatter_message_id and recipient.partner_id and fields[0] != Status.PENDING:
            settlement.notifications.append((mail.chatter_message_id, recipient.partner_id,
                                             "sent" if result.accepted else "exception",
                                             result.reason))

    attempts = mail.attempt_count + (1 if job.attempted else 0)
    failure_type, reason = job.failure_type, job.reason
    pending = [r for r in job.recipients if status[r.pk] == Status.PENDING]
    next_attempt_at = now
    gave_up = False
    state: str | None
    if job.wait_until is not None and not job.attempted:
        state, next_attempt_at = State.DEFERRED, job.wait_until
    elif pending:
        first = _first_failure(pending, results)
        if first is not None:
            failure_type, reason = first.failure_type, first.reason
        if now - (mail.scheduled_at or mail.created_at) >= lifetime:
            reason = f"Given up after {lifetime.days} days of retries: {reason}"
            for recipient in pending:
                status[recipient.pk] = Status.FAILED
                settlement.recipients[recipient.pk] = dict(
                    status=Status.FAILED, smtp_code=settlement.recipients.get(
                        recipient.pk, {}).get("smtp_code"), failure_type=failure_type,
                    failure_reason=reason, sent_at=None)
                if mail.chatter_message_id and recipient.partner_id:
                    settlement.notifications.append((mail.chatter_message_id,
                                                     recipient.partner_id, "exception", reason))
            state, gave_up = None, True
        else:
            state, next_attempt_at = State.DEFERRED, retry_at(attempts)
    else:
        state = None
    if state is None:  # every recipient has its outcome
        sent = [r for r in job.recipients if status[r.pk] == Status.SENT]
        failed = [r for r in job.recipients if status[r.pk] == Status.FAILED]
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
    settlement.notify_author = state == State.EXCEPTION and not mail.author_notified
    settlement.state, settlement.failure_type, settlement.reason = state, failure_type, reason
    settlement.next_attempt_at, settlement.attempt_count = next_attempt_at, attempts
    settlement.used_server_id = job.used_server.pk if job.used_server else mail.used_server_id
    settlement.sent_at = (mail.sent_at or now) if state == State.SENT else None
    settlement.author_notified = mail.author_notified or settlement.notify_author
    settlement.run_hooks = state == State.SENT and bool(mail.on_sent)
    settlement.delete = state == State.SENT and mail.auto_delete
    settlement.attempts = [] if settlement.delete else list(job.attempts)
    return settlement
