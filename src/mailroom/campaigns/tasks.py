"""The contact-import worker step: uploaded files become subscriptions, chunk by chunk.

1. Claim: a short transaction leases one queued import (or a running one whose worker died:
   its lease ran out) to this worker.
2. Read the file from the blob store and skip the `done` rows already committed, remembering
   their addresses so duplicates across chunks are still caught.
3. Each chunk of CHUNK_SIZE rows is one transaction: contacts created, subscriptions added,
   bad rows stored with their reasons, and `done` and the counters moved on, all together,
   only while this worker still holds the lease. A crash loses at most the chunk in flight,
   which is then done again from the start: never twice, never half.
4. After STEP_SECONDS the worker lets go (the import stays "running", unleased) so other
   steps (the sender…) get their turn; the next pass takes it up from `done`.

An error stops the import as "failed" with the reason in plain words and the rows already
done kept; Retry (services.retry_import) queues it again and it resumes from there.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import timedelta
from itertools import islice

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from mailroom.campaigns.imports import (
    FIELDS,
    ImportFileError,
    RowResult,
    classify,
    country_code,
    data_rows,
    language_code,
)
from mailroom.campaigns.models import ImportBadRow, ImportJob, Subscription
from mailroom.contacts.models import Partner, PartnerTag
from mailroom.contacts.services import save_partner
from mailroom.core.blobs import BlobMissing, read_blob
from mailroom.core.leasing import claim_one
from mailroom.core.steps import register_step

log = logging.getLogger("mailroom.campaigns")

State = ImportJob.State
Reason = ImportBadRow.Reason
CHUNK_SIZE = 1000
STEP_SECONDS = 20.0
LEASE = timedelta(seconds=int(os.environ.get("MAILROOM_IMPORT_LEASE_SECONDS", "600")))


def _due(now):
    return (ImportJob.objects.filter(state__in=[State.QUEUED, State.RUNNING])
            .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=now)))


def claim(owner: str, now=None) -> int | None:
    """Lease one due import to `owner`; its id, or None when there is nothing to do."""
    now = now or timezone.now()
    return claim_one(lambda: _due(now), ("created_at", "id"), then=lambda pk: (
        ImportJob.objects.filter(pk=pk, started_at__isnull=True).update(started_at=now)),
        state=State.RUNNING, lease_owner=owner, lease_expires_at=now + LEASE,
        attempts=F("attempts") + 1)


def _held(job_id: int, owner: str):
    return ImportJob.objects.filter(pk=job_id, lease_owner=owner, state=State.RUNNING)


def _fail(job_id: int, owner: str, reason: str) -> None:
    _held(job_id, owner).update(state=State.FAILED, error=reason[:500],
                                finished_at=timezone.now(), lease_owner="",
                                lease_expires_at=None)


class _Writer:
    """Writes one chunk's verdicts; caches organisations and tags across chunks."""

    def __init__(self, job: ImportJob):
        self.job = job
        self.orgs: dict[str, Partner] = {}
        self.tags: dict[str, PartnerTag] = {}

    def organisation(self, name: str) -> Partner | None:
        name = name.strip()[:200]
        if not name:
            return None
        key = name.lower()
        if key not in self.orgs:
            org = (Partner.objects.filter(company_id=self.job.company_id,
                                          kind=Partner.Kind.ORGANISATION, name__iexact=name)
                   .order_by("pk").first())
            if org is None:
                org = save_partner(Partner(company_id=self.job.company_id, name=name,
                                           kind=Partner.Kind.ORGANISATION), actor=None)
            self.orgs[key] = org
        return self.orgs[key]

    def tag_list(self, text: str) -> list[PartnerTag]:
        result = []
        for raw in text.replace(";", ",").split(","):
            name = raw.strip()[:60]
            if not name:
                continue
            if name.lower() not in self.tags:
                tag = (PartnerTag.objects.filter(company_id=self.job.company_id,
                                                 name__iexact=name).first()
                       or PartnerTag.objects.create(company_id=self.job.company_id, name=name))
                self.tags[name.lower()] = tag
            result.append(self.tags[name.lower()])
        return result

    def contact(self, result: RowResult) -> tuple[Partner, bool]:
        fields = result.fields
        tags = self.tag_list(fields.get("tags", ""))
        if result.partner is not None:
            partner = result.partner
            created = False
        else:
            name = fields.get("name", "").strip()[:200] or result.email.split("@")[0]
            partner = Partner(company_id=self.job.company_id, email=result.email, name=name,
                              parent=self.organisation(fields.get("company", "")),
                              country=country_code(fields.get("country", "")))
            language = language_code(fields.get("language", ""))
            if language:
                partner.language = language
            partner = save_partner(partner, actor=None)
            created = True
        if tags:
            partner.tags.add(*tags)
        return partner, created

    def write(self, results: list[RowResult]) -> dict[str, int]:
        job = self.job
        counts = {"created": 0, "updated": 0, "contacts_created": 0, "bad": 0}
        bad_rows = []
        new_subscriptions = []
        status = (Subscription.Status.UNCONFIRMED if job.mailing_list.double_opt_in
                  else Subscription.Status.SUBSCRIBED)
        now = timezone.now()
        for result in results:
            if not result.good:
                bad_rows.append(ImportBadRow(job=job, row=result.line, email=result.email,
                                             reason=result.reason,
                                             message=result.message[:300],
                                             values=result.values))
                continue
            try:
                with transaction.atomic():  # a contact the database refuses is a bad row
                    partner, created = self.contact(result)
            except ValidationError as exc:
                bad_rows.append(ImportBadRow(
                    job=job, row=result.line, email=result.email, reason=Reason.INVALID,
                    message=f"The contact could not be saved: {'; '.join(exc.messages)}"[:300],
                    values=result.values))
                continue
            if result.subscription_status:  # already on the list, subscribed or unconfirmed
                counts["updated"] += 1  # (its contact got the file's tags)
                continue
            counts["contacts_created"] += created
            new_subscriptions.append(Subscription(
                company_id=job.company_id, mailing_list_id=job.mailing_list_id,
                partner=partner, email=result.email, status=status,
                source=Subscription.Source.IMPORT,
                consent_how=f"{job.consent_how} (import of {job.filename})"[:500],
                consent_at=job.created_at,
                confirmed_at=now if status == Subscription.Status.SUBSCRIBED else None,
                created_at=now, updated_at=now))
        ImportBadRow.objects.bulk_create(bad_rows)
        Subscription.objects.bulk_create(new_subscriptions)
        counts["bad"] = len(bad_rows)
        counts["created"] = len(new_subscriptions)
        return counts


def process(job_id: int, owner: str, *, max_chunks: int | None = None,
            seconds: float = STEP_SECONDS) -> bool:
    """Import the leased job from `done` on, chunk by chunk. True when the job is finished
    (done or failed), False when it was let go for a later pass."""
    job = ImportJob.objects.select_related("mailing_list").get(pk=job_id)
    try:  # a store that cannot be reached raises: the job is tried again on a later pass
        content = read_blob(job.file_sha256)
    except BlobMissing:
        _fail(job_id, owner, "The uploaded file is missing from the file store. Restore the "
                             "data directory from a backup, or upload the file again.")
        return True
    mapping = {name: int(index) for name, index in job.mapping.items() if name in FIELDS}
    rows = data_rows(content, job.file_format, job.has_header)
    seen: dict[str, int] = {}
    writer = _Writer(job)
    started = time.monotonic()
    chunks = 0
    try:
        skipped = list(islice(rows, job.done))
        classify(skipped, mapping, job.mailing_list, seen, check_contacts=False)
        while True:
            chunk = list(islice(rows, CHUNK_SIZE))
            if not chunk:
                break
            with transaction.atomic():
                held = _held(job_id, owner).select_for_update().first()
                if held is None:
                    return False  # the lease was lost: whoever holds it carries on
                counts = writer.write(classify(chunk, mapping, job.mailing_list, seen))
                held.done += len(chunk)
                held.total = max(held.total, held.done)
                for name, value in counts.items():
                    setattr(held, name, getattr(held, name) + value)
                held.lease_expires_at = timezone.now() + LEASE
                held.save(update_fields=["done", "total", "created", "updated",
                                         "contacts_created", "bad", "lease_expires_at"])
            chunks += 1
            if (max_chunks is not None and chunks >= max_chunks) or (
                    time.monotonic() - started > seconds):
                if not _rows_left(rows):
                    break
                _held(job_id, owner).update(lease_owner="", lease_expires_at=None)
                return False
    except ImportFileError as exc:
        _fail(job_id, owner, f"{exc} The rows before the problem are imported; fix the file "
                             "and import the rest.")
        return True
    except Exception as exc:  # noqa: BLE001 - a failed import must say why, not vanish
        log.exception("campaigns: import %s failed", job_id)
        _fail(job_id, owner, f"The import stopped after {_done(job_id)} rows: "
                             f"{type(exc).__name__}: {exc}. The rows before are imported; "
                             "press Retry to continue from there.")
        return True
    _held(job_id, owner).update(state=State.DONE, finished_at=timezone.now(), lease_owner="",
                                lease_expires_at=None, error="")
    return True


def _rows_left(rows) -> bool:
    """Whether the row iterator has more; it is abandoned either way."""
    return next(rows, None) is not None


def _done(job_id: int) -> int:
    return ImportJob.objects.filter(pk=job_id).values_list("done", flat=True).first() or 0


@register_step("contact_imports")
def contact_imports_step(owner: str) -> bool:
    """One pass: claim an import and work on it for a while. True when it did any work."""
    job_id = claim(owner)
    if job_id is None:
        return False
    process(job_id, owner)
    return True
