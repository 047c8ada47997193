"""What one sender pass carries around: a Job per mail, a Lane per connection, a Flight per
batch, and the SendAttempt row a job leaves behind. Plain data; no database or network I/O."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime

from mailroom.outgoing.models import (
    FailureType,
    MailServer,
    OutgoingMail,
    OutgoingRecipient,
    SendAttempt,
)
from mailroom.outgoing.sending import rate_limits
from mailroom.outgoing.smtp.smtp_errors import RecipientResult, SmtpError

State = OutgoingMail.State
Status = OutgoingRecipient.Status
Outcome = SendAttempt.Outcome


@dataclass(eq=False)
class Job:
    mail: OutgoingMail
    recipients: list[OutgoingRecipient]
    candidates: list[MailServer] = field(default_factory=list)
    raw: bytes = b""
    # the same message with UTF-8 headers (RFC 6532), when it has internationalised addresses:
    # sent instead of `raw` to servers that offer SMTPUTF8
    utf8_raw: bytes | None = None
    envelopes: dict[int, str] = field(default_factory=dict)  # recipient pk -> bounce address
    results: dict[int, RecipientResult] = field(default_factory=dict)
    attempts: list[SendAttempt] = field(default_factory=list)
    # the outcome, when decided without sending (expired, too large, waiting…)
    state: str | None = None
    failure_type: str = ""
    reason: str = ""
    wait_until: datetime | None = None
    attempted: bool = False
    used_server: MailServer | None = None
    spent_ms: int = 0
    previous_state: str = State.OUTGOING
    released: bool = False  # not reached in this pass: back to previous_state, untouched

    @property
    def pending(self) -> list[OutgoingRecipient]:
        return [r for r in self.recipients if r.status == Status.PENDING]

    def fail(self, failure_type: str, reason: str) -> None:
        """Permanent failure of every pending recipient, before any SMTP traffic."""
        self.state, self.failure_type, self.reason = State.EXCEPTION, failure_type, reason
        for recipient in self.pending:
            self.results[recipient.pk] = RecipientResult(
                recipient.address, False, failure_type=failure_type, reason=reason)

    def defer(self, failure_type: str, reason: str) -> None:
        """Try again after the back-off (counts as an attempt)."""
        self.state, self.failure_type, self.reason = State.DEFERRED, failure_type, reason
        self.attempted = True

    def release(self) -> None:
        self.released = True

    def wait(self, until: datetime, reason: str) -> None:
        """Not an attempt: a rate limit or an open circuit; due again at `until`."""
        self.state, self.reason, self.wait_until = State.DEFERRED, reason, until
        self.failure_type = ""

    def broke(self, reason: str, server: MailServer | None = None) -> None:
        """Mailroom itself failed on this mail (an exception, not a server's answer): every
        recipient without an outcome fails with `reason`. The caller adds the attempt row;
        Retry in the hub sends it again. The other mails of the pass are not affected."""
        self.failure_type, self.reason = FailureType.UNKNOWN, reason
        self.attempted, self.used_server = True, server or self.used_server
        for recipient in self.pending:
            if recipient.pk not in self.results:
                self.results[recipient.pk] = RecipientResult(
                    recipient.address, False, failure_type=FailureType.UNKNOWN, reason=reason)


def broken_reason(exc: BaseException, address: str | None = None) -> str:
    """An unexpected error, in words for the hub (the traceback goes to the log)."""
    what = f"to {address}" if address else "this email"
    return (f"Mailroom failed while sending {what} ({type(exc).__name__}: {exc}). The error "
            f"is in the worker log; Retry in the email hub sends it again.")


@dataclass(eq=False)
class Lane:
    """The mails one connection sends, and what happened to the connection."""

    server: MailServer
    jobs: list[Job]
    token: str | None = None
    error: SmtpError | None = None  # the server could not be used
    opened: bool = False
    unattempted: list[Job] = field(default_factory=list)
    slot: int = 0  # which of the server's connections this lane runs on
    started: float = 0.0
    ended: float = 0.0


@dataclass(eq=False)
class Flight:
    """A batch whose connections are running."""

    jobs: list[Job]
    lanes: list[Lane]
    reservations: dict[int, rate_limits.Reservation]
    futures: list[Future]
    now: datetime


def attempt_row(job: Job, server: MailServer | None, started: datetime, spent_ms: int,
                worker: str) -> SendAttempt:
    """The SendAttempt of one conversation (or of a failure before any: no server reply)."""
    results = [job.results[r.pk] for r in job.pending if r.pk in job.results]
    accepted = [r for r in results if r.accepted]
    refused = [r for r in results if not r.accepted]
    if not results:  # nothing came of it: the job's own reason says why
        outcome = Outcome.FAILED if job.state == State.EXCEPTION else Outcome.DEFERRED
        code, reply = None, job.reason
    else:
        if not refused:
            outcome = Outcome.SENT
        elif accepted:
            outcome = Outcome.PARTIAL
        elif all(r.temporary for r in refused):
            outcome = Outcome.DEFERRED
        else:
            outcome = Outcome.FAILED
        decisive = refused[0] if refused else accepted[-1]
        code, reply = decisive.code, decisive.reason if refused else decisive.reply
    return SendAttempt(mail_id=job.mail.pk, server=server,
                       server_name=server.name[:100] if server else "",
                       started_at=started, duration_ms=spent_ms, outcome=outcome,
                       smtp_code=code, smtp_reply=(reply or "")[:2000], worker=worker)
