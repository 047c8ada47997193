"""Preparing a claimed batch: recipients, attachments, servers and DKIM keys in a few queries;
each message is built and signed once (compose.py).

A mail that cannot go out this pass gets its outcome here, before any network I/O: expired
(fails), no matching server (deferred), cannot be built or too large for every server (fails,
with an attempt row saying why), every server's circuit open (waits for the first to close),
an attachment's stored file missing (fails: restore it, then Retry) or the file store not
answering (deferred: tried again after the back-off, like a server that is down).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta

from django.utils import timezone

from mailroom.core.blobs import BlobError
from mailroom.outgoing.compose import Composer
from mailroom.outgoing.hooks import run_send_checks
from mailroom.outgoing.models import FailureType, MailServer, OutgoingMail, OutgoingRecipient
from mailroom.outgoing.sending import circuit, server_choice
from mailroom.outgoing.sending.jobs import Job, attempt_row, broken_reason

log = logging.getLogger("mailroom.sender")

SEND_CHECK_DEFER = timedelta(minutes=5)  # a mail a send check holds back waits this long


def prepare(ids: list[int], now: datetime, composer: Composer, owner: str) -> list[Job]:
    """A Job per claimed mail, in priority order, built and signed once, with the servers
    that may take it now — or its outcome when it cannot go out (see `_prepare_one`)."""
    mails = list(OutgoingMail.objects.filter(pk__in=ids).order_by(
        "priority", "next_attempt_at", "id"))
    verdicts = run_send_checks(mails)
    if verdicts:
        cancelled = _cancel({k: v[1] for k, v in verdicts.items() if v[0] == "cancel"}, owner)
        mails = [m for m in mails if m.pk not in cancelled]
    recipients: dict[int, list[OutgoingRecipient]] = defaultdict(list)
    for recipient in OutgoingRecipient.objects.filter(mail_id__in=ids).order_by("id"):
        recipients[recipient.mail_id].append(recipient)
    companies = {m.company_id for m in mails}
    servers: dict[int, list[MailServer]] = defaultdict(list)
    for server in MailServer.objects.filter(company_id__in=companies):
        servers[server.company_id].append(server)
    composer.load(mails, companies)
    jobs = []
    for mail in mails:
        job = Job(mail, recipients[mail.pk])
        jobs.append(job)
        verdict = verdicts.get(mail.pk)
        if verdict is not None and verdict[0] == "defer" and job.pending:
            job.wait(now + SEND_CHECK_DEFER, verdict[1])
            continue
        try:
            _prepare_one(job, servers[mail.company_id], now, composer, owner)
        except Exception as exc:  # a bug must not block the batch: this mail fails alone
            log.exception("sender: cannot prepare mail %s", mail.pk)
            _unbuildable(job, None, now, FailureType.UNKNOWN, broken_reason(exc), owner)
    return jobs


def _cancel(reasons: dict[int, str], owner: str) -> set[int]:
    """Cancel the mails a send check stopped, with its reason, if this worker still holds
    them (one UPDATE per reason): they leave the batch before anything is built."""
    by_reason: dict[str, list[int]] = defaultdict(list)
    for mail_id, reason in reasons.items():
        by_reason[reason].append(mail_id)
    done: set[int] = set()
    for reason, mail_ids in by_reason.items():
        mine = OutgoingMail.objects.filter(pk__in=mail_ids, state=OutgoingMail.State.SENDING,
                                           lease_owner=owner)
        done.update(mine.values_list("pk", flat=True))
        mine.update(state=OutgoingMail.State.CANCELLED, failure_type="",
                    failure_reason=reason[:4000], lease_owner="", lease_expires_at=None)
    if done:
        log.info("sender %s: %d mail(s) cancelled by a send check", owner, len(done))
    return done


def _unbuildable(job: Job, server: MailServer | None, now: datetime, failure_type: str,
                 reason: str, owner: str) -> None:
    """The message cannot be built: it fails alone, with an attempt row saying why."""
    job.fail(failure_type, reason)
    job.attempted = True
    job.attempts.append(attempt_row(job, server, now, 0, owner))


def _prepare_one(job: Job, servers: list[MailServer], now: datetime, composer: Composer,
                 owner: str) -> None:
    mail = job.mail
    if not job.pending:
        return  # every recipient already has its outcome: settle says sent or failed
    if mail.expires_at and mail.expires_at <= now:
        when = timezone.localtime(mail.expires_at)
        job.fail(FailureType.EXPIRED,
                 f"Not sent before its expiry time ({when:%Y-%m-%d %H:%M}).")
        return
    candidates = server_choice.candidates(mail, servers)
    if not candidates:
        if mail.server_id:
            reason = "The server chosen for this email is switched off or was deleted."
        else:
            reason = (f"No active outgoing server for {mail.get_purpose_display().lower()} "
                      f"mail accepts the sender {server_choice.sender_address(mail.email_from)}.")
        job.defer(FailureType.NO_SERVER, reason)
        return
    try:
        built = composer.build(mail, job.recipients, job.pending)
    except ValueError as exc:  # lib.mime refuses what it cannot encode, naming it
        _unbuildable(job, candidates[0], now,
                     FailureType.INVALID_RECIPIENT if "address" in str(exc).lower()
                     else FailureType.UNKNOWN, f"The message cannot be built: {exc}", owner)
        return
    except BlobError as exc:  # an attachment's file: lost, or the store does not answer
        if exc.kind == "missing":
            _unbuildable(job, candidates[0], now, FailureType.STORAGE,
                         f"An attachment's stored file is missing ({exc}). Restore it (`mailroom "
                         f"blobs check` lists what is missing), then Retry. Nothing was sent.",
                         owner)
        else:
            job.defer(FailureType.STORAGE,
                      f"The attachment file store did not answer ({exc}); it will be tried "
                      f"again. Nothing was sent.")
        return
    job.raw, job.utf8_raw, job.envelopes = built.raw, built.utf8_raw, built.envelopes
    size = len(job.raw)
    fitting = [s for s in candidates if not s.size_limit or size <= s.size_limit]
    if not fitting:
        limit = max(s.size_limit for s in candidates)
        job.fail(FailureType.TOO_LARGE,
                 f"The message is {size / 1048576:.1f} MB with its attachments; the largest "
                 f"the servers accept is {limit / 1048576:.1f} MB. Nothing was sent.")
        return
    usable = [s for s in fitting if not circuit.circuit_open(s, now)]
    if not usable:
        first = min(fitting, key=lambda s: s.circuit_open_until)
        job.wait(first.circuit_open_until,
                 f"{first.name} could not be used ({first.last_error or 'unreachable'}); "
                 f"waiting for it to recover.")
        return
    job.candidates = usable
