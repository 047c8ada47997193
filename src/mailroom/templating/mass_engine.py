"""The `templating.mass` worker step: a mass send rendered and queued, BATCH records a time.

1. Claim: a short transaction leases one waiting job (or one whose worker died: its lease
   ran out) and marks it RUNNING (core.leasing.claim_one, as the campaign step does).
2. A batch: its records are loaded and rendered outside any transaction (MassRenderer: the
   layout finished once per language, only the placeholders per record), each checked as
   the list page checks it (cancelled, no address, blacklisted: skipped, with the reason);
   then one transaction re-reads the job under lock (a cancelled job is left alone), logs
   the mails on the records' chatters in one insert, queues them on the bulk lane with
   `outgoing.services.enqueue_many`, and moves `position` on. A worker killed mid-way
   redoes at most the batch it held; a mail's idempotency key ("mass:<batch>:<record>")
   makes even that queue nothing twice.
3. Time up (STEP_SECONDS), the lease is let go and a later pass carries on.

A record whose mail cannot be built (a template error, an invalid rendered address) is a
problem of that record, listed with its reason; the others go on.
"""

from __future__ import annotations

import logging
import os
import time
from collections import defaultdict
from datetime import timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from mailroom.chatter.services import log_sent_emails
from mailroom.core import record_types
from mailroom.core.leasing import claim_one
from mailroom.lib.sandbox import TemplateError
from mailroom.outgoing.bulk import BulkOutbox
from mailroom.outgoing.models import OutgoingMail, Purpose
from mailroom.templating.context import related_lookups
from mailroom.templating.mass_models import MassSend
from mailroom.templating.mass_render import (
    MassRenderer,
    addresses_of,
    blacklisted_among,
    review,
)
from mailroom.templating.services import _on_sent, default_sender

log = logging.getLogger("mailroom.templating")

State = MassSend.State
BATCH = 200
STEP_SECONDS = 10.0
MAX_PROBLEMS = 500
LEASE = timedelta(seconds=int(os.environ.get("MAILROOM_MASS_LEASE_SECONDS", "300")))


def mail_key(batch: str, record) -> str:
    """The outbox idempotency key of the mail a batch sends to `record` (the list page's
    chunked path uses the same one)."""
    return f"mass:{batch}:{record._meta.label_lower}:{record.pk}"


def _due(now):
    return (MassSend.objects.filter(state__in=[State.QUEUED, State.RUNNING])
            .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=now)))


def claim(owner: str, now=None) -> int | None:
    now = now or timezone.now()
    return claim_one(lambda: _due(now), ("created_at", "id"), state=State.RUNNING,
                     lease_owner=owner, lease_expires_at=now + LEASE, updated_at=now)


def _held(job_id: int, owner: str):
    return MassSend.objects.filter(pk=job_id, lease_owner=owner, state=State.RUNNING)


class _Batch:
    def __init__(self) -> None:
        self.ready: list[tuple[object, object]] = []  # (record, RenderedMail)
        self.problems: list[dict] = []
        self.skipped = 0

    def problem(self, record_id: int, label: str, reason: str) -> None:
        self.skipped += 1
        self.problems.append({"id": record_id, "label": label[:200], "reason": reason[:500]})


class Runner:
    """Works through one job's records."""

    def __init__(self, job: MassSend) -> None:
        self.job = job
        self.model = job.content_type.model_class()
        self.renderer = MassRenderer(job.template, user=job.actor) if job.template else None
        self.on_sent = _on_sent(job.template)
        self.content_type_id = job.content_type_id
        record_type = record_types.for_model(self.model)
        self.joins, self.prefetches = (related_lookups(self.model, record_type)
                                       if record_type else ([], []))

    def prepare(self, ids: list[int]) -> _Batch:
        """Render the batch (no transaction held)."""
        batch, job = _Batch(), self.job
        records = self.model.objects.select_related("company", *self.joins)
        if self.prefetches:
            records = records.prefetch_related(*self.prefetches)
        records = (records.for_user(job.actor) if job.actor is not None
                   else records.filter(company_id=job.company_id))
        found = {r.pk: r for r in records.filter(pk__in=ids)}
        self.renderer.prime(found.values())
        rendered = []
        for pk in ids:
            record = found.get(pk)
            if record is None:
                batch.problem(pk, f"#{pk}", "No such record in your companies any more.")
                continue
            try:
                rendered.append((record, self.renderer.render(record)))
            except TemplateError as exc:
                batch.problem(pk, str(record), f"Template error: {exc}")
        by_company = defaultdict(set)
        for record, mail in rendered:
            by_company[record.company_id].update(addresses_of(mail))
        blacklisted = {company_id: blacklisted_among(company_id, addresses)
                       for company_id, addresses in by_company.items()}
        for record, mail in rendered:
            verdict = review(record, mail, blacklisted[record.company_id])
            if verdict.skip:
                batch.problem(record.pk, str(record), verdict.skip)
            else:
                batch.ready.append((record, mail))
        return batch

    def write(self, batch: _Batch) -> int:
        """Log and queue the batch's mails (inside the caller's transaction). A mail the
        outbox refuses is taken out as a problem and the rest written again."""
        while True:
            try:
                with transaction.atomic():
                    return self._write_once(batch)
            except _Refused as refused:
                batch.ready = [(r, m) for r, m in batch.ready if r is not refused.record]
                batch.problem(refused.record.pk, str(refused.record), refused.reason)

    def _write_once(self, batch: _Batch) -> int:
        job, template = self.job, self.job.template
        keys = [mail_key(job.batch, record) for record, _ in batch.ready]
        companies = {record.company_id for record, _ in batch.ready}
        done = set(OutgoingMail.objects.filter(company_id__in=companies,  # the key's index
                                               idempotency_key__in=keys)
                   .values_list("idempotency_key", flat=True)) if keys else set()
        todo = [(record, mail) for record, mail in batch.ready
                if mail_key(job.batch, record) not in done]
        if not todo:
            return len(done)
        outbox = BulkOutbox(actor=job.actor, purpose=Purpose.BULK,
                            priority=OutgoingMail.Priority.LOW, server=template.server,
                            on_sent=self.on_sent, auto_delete=template.auto_delete)
        partners = {}
        for company_id in {record.company_id for record, _ in todo}:
            company = next(r.company for r, _ in todo if r.company_id == company_id)
            partners[company_id] = outbox.partners_for(company, (
                a for r, m in todo if r.company_id == company_id for a in [*m.to, *m.cc]
                if isinstance(a, str)))
        message_ids = log_sent_emails([(record, mail.subject, mail.body)
                                       for record, mail in todo], actor=job.actor)
        for (record, mail), message_id in zip(todo, message_ids, strict=True):
            try:
                outbox.add(company=record.company,
                           email_from=mail.email_from or default_sender(record, job.actor),
                           to=mail.to, cc=mail.cc, subject=mail.subject, html=mail.html,
                           text=mail.text, content_type_id=self.content_type_id,
                           object_id=record.pk, chatter_message_id=message_id,
                           reply_to=mail.reply_to, idempotency_key=mail_key(job.batch, record),
                           scheduled_at=mail.scheduled_at,
                           partners=partners[record.company_id])
            except ValidationError as exc:
                raise _Refused(record, _reason(exc)) from exc
        outbox.write()
        return len(todo) + len(done)


class _Refused(Exception):
    def __init__(self, record, reason: str) -> None:
        super().__init__(reason)
        self.record, self.reason = record, reason


_FIELD_LABELS = {"email_from": "From", "reply_to": "Reply-to", "to": "To", "cc": "Cc",
                 "subject": "Subject", "html": "Body"}


def _reason(exc: ValidationError) -> str:
    """“From: 'x' is not a valid address.” — the field in words, then the outbox's reason."""
    parts = []
    for key, messages in (exc.message_dict.items() if hasattr(exc, "error_dict") else ()):
        field = key.split(".")[0]
        label = _FIELD_LABELS.get(field, field.replace("_", " ").capitalize())
        parts.extend(f"{label}: {message}" for message in messages)
    if not parts:
        parts = list(exc.messages)
    return "; ".join(parts)


def _finish(job_id: int, owner: str, state: str, reason: str = "") -> None:
    now = timezone.now()
    _held(job_id, owner).update(state=state, state_reason=reason[:1000], finished_at=now,
                                lease_owner="", lease_expires_at=None, updated_at=now)


def process(job_id: int, owner: str, *, max_batches: int | None = None,
            seconds: float = STEP_SECONDS) -> bool:
    """Work on the leased job. True when it is finished, False when it was let go for a
    later pass (time up, cancelled, lease lost)."""
    started, batches = time.monotonic(), 0
    try:
        job = MassSend.objects.select_related("template", "template__server", "actor",
                                              "content_type").get(pk=job_id)
        if job.template is None:
            _finish(job_id, owner, State.FAILED, "The template was deleted.")
            return True
        runner = Runner(job)
        while True:
            ids = job.record_ids[job.position:job.position + BATCH]
            if not ids:
                _finish(job_id, owner, State.DONE, _done_note(job))
                return True
            batch = runner.prepare(ids)
            with transaction.atomic():
                held = MassSend.objects.select_for_update().filter(
                    pk=job_id, lease_owner=owner, state=State.RUNNING).first()
                if held is None:  # cancelled, or another worker took it over
                    return False
                sent = runner.write(batch)
                held.position += len(ids)
                held.sent += sent
                held.skipped += batch.skipped
                held.problems = (held.problems + batch.problems)[:MAX_PROBLEMS]
                held.lease_expires_at = timezone.now() + LEASE
                held.updated_at = timezone.now()
                held.save(update_fields=["position", "sent", "skipped", "problems",
                                         "lease_expires_at", "updated_at"])
            job = held
            batches += 1
            if (max_batches is not None and batches >= max_batches) or (
                    time.monotonic() - started > seconds):
                _held(job_id, owner).update(lease_owner="", lease_expires_at=None)
                return False
    except PermissionDenied as exc:
        _finish(job_id, owner, State.FAILED, f"Stopped: {exc}. {_progress_note(job_id)}")
        return True
    except Exception as exc:  # noqa: BLE001 - a stopped job must say why, not vanish
        log.exception("templating: mass send %s failed", job_id)
        _finish(job_id, owner, State.FAILED, f"Stopped: {type(exc).__name__}: {exc}. "
                                             f"{_progress_note(job_id)}")
        return True


def _done_note(job: MassSend) -> str:
    if not job.skipped:
        return f"{job.sent} mails queued."
    return f"{job.sent} mails queued; {job.skipped} records skipped (see the list)."


def _progress_note(job_id: int) -> str:
    position, total, sent = MassSend.objects.filter(pk=job_id).values_list(
        "position", "total", "sent").first() or (0, 0, 0)
    return (f"{sent} mails were queued before this; {total - position} of {total} records "
            f"were not worked on. Start the send again from the list to finish it "
            f"(records already sent get nothing twice).")


def mass_step(owner: str) -> bool:
    """One pass: claim a waiting mass send and work a slice of it. True when it did work."""
    job_id = claim(owner)
    if job_id is None:
        return False
    process(job_id, owner)
    return True

