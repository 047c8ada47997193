"""Starting and cancelling a mass send in the worker (mass_engine.py does the work).

`in_worker(template, count)`: a selection larger than one chunk whose template attaches no
per-record document (a quotation's PDF is rendered per record, which the engine does not
batch) nor fixed files goes to the worker; smaller ones are sent in the request, one chunk.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from mailroom.chatter.services import require_access
from mailroom.core.services import audit
from mailroom.templating.mass_models import MassSend
from mailroom.templating.models import EmailTemplate

CHUNK = 20
MAX_RECORDS = 200_000


def in_worker(template: EmailTemplate, count: int) -> bool:
    return (count > CHUNK and not template.attach_document
            and not template.attachments.exists())


def start_mass(template: EmailTemplate, content_type, ids: list[int], *, actor, company,
               batch: str) -> MassSend:
    """The job for this selection: created, or the one the same batch already made."""
    if actor is None or not getattr(actor, "is_authenticated", False):
        raise PermissionDenied("Sign in to send email.")
    if not ids:
        raise ValidationError({"ids": "Choose at least one record."})
    if len(ids) > MAX_RECORDS:
        raise ValidationError({"ids": f"At most {MAX_RECORDS:,} records at once: send the "
                                      f"rest in a second selection."})
    if template.company_id not in (None, company.pk):
        raise ValidationError({"template": "This template belongs to another company."})
    require_access(actor, _Probe(company.pk))
    existing = MassSend.objects.filter(company=company, batch=batch).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            job = MassSend.objects.create(company=company, template=template,
                                          content_type=content_type, batch=batch,
                                          record_ids=list(ids), actor=actor, total=len(ids))
            audit("templating.mass.start", actor=actor, obj=job, company=company,
                  after={"template": template.pk, "records": len(ids),
                         "record_type": content_type.model})
    except IntegrityError:  # a second click won the race: its job is this selection's
        return MassSend.objects.get(company=company, batch=batch)
    return job


def cancel_mass(job: MassSend, *, actor) -> MassSend:
    """Stop a waiting or running job: the batches already queued stay queued (the outbox
    can cancel them), the rest get nothing."""
    require_access(actor, _Probe(job.company_id))
    with transaction.atomic():
        held = MassSend.objects.select_for_update().get(pk=job.pk)
        if held.finished:
            return held
        now = timezone.now()
        held.state, held.finished_at, held.updated_at = MassSend.State.CANCELLED, now, now
        held.state_reason = (f"Cancelled by {actor.get_full_name() or actor.get_username()} "
                             f"after {held.sent} of {held.total} mails were queued.")
        held.lease_owner, held.lease_expires_at = "", None
        held.save()
        audit("templating.mass.cancel", actor=actor, obj=held, company=held.company)
    return held


class _Probe:
    """A stand-in record for the company check (chatter.services.can_access)."""

    def __init__(self, company_id: int) -> None:
        self.company_id = company_id
