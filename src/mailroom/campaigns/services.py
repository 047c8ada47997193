"""Campaign services: the only writers of mailing lists, subscriptions and contact imports.

One transaction each, an explicit `actor` (None is the system: the worker, the CLI), an
audit row for list changes. Subscribing and unsubscribing are idempotent: calling them twice
changes nothing the second time. An unsubscribed, bounced or complained subscription is
never turned back into a subscribed one by accident: only `subscribe(..., resubscribe=True)`
(the person's own new consent) does that.
"""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from mailroom.campaigns import confirmation
from mailroom.campaigns.models import ImportJob, MailingList, Subscription
from mailroom.contacts.models import Partner
from mailroom.core.access import require
from mailroom.core.blobs import store_bytes
from mailroom.core.services import audit, snapshot
from mailroom.lib.addresses import InvalidAddress, sendable_email

Status = Subscription.Status
LIST_FIELDS = ["name", "description", "public", "double_opt_in", "active"]
# statuses a person left the list with: only their own new consent brings them back
LEFT = (Status.UNSUBSCRIBED, Status.BOUNCED, Status.COMPLAINED)


def email_snapshot(address: str) -> str:
    """The address a subscription keeps: normalised and lower-cased."""
    return sendable_email(address).lower()


# --- lists ---------------------------------------------------------------------------------

def save_list(mailing_list: MailingList, *, actor) -> MailingList:
    """Create or change a list (Mail Managers)."""
    creating = mailing_list.pk is None
    require(actor, "campaigns.add_mailinglist" if creating else "campaigns.change_mailinglist",
            mailing_list, denied="Only Mail Managers can change mailing lists.")
    mailing_list.name = (mailing_list.name or "").strip()
    mailing_list.full_clean()
    with transaction.atomic():
        before = {}
        if not creating:
            previous = MailingList.objects.select_for_update().get(pk=mailing_list.pk)
            before = snapshot(previous, LIST_FIELDS)
        mailing_list.updated_at = timezone.now()
        try:
            with transaction.atomic():
                mailing_list.save()
        except IntegrityError:
            raise ValidationError({"name": "This company already has a list with that "
                                           "name."}) from None
        audit("campaigns.list.create" if creating else "campaigns.list.change", actor=actor,
              obj=mailing_list, before=before, after=snapshot(mailing_list, LIST_FIELDS))
    return mailing_list


def archive_list(mailing_list: MailingList, *, actor, active: bool = False) -> MailingList:
    """Archive (or restore) a list: it keeps its subscriptions and history."""
    require(actor, "campaigns.change_mailinglist", mailing_list,
            denied="Only Mail Managers can archive mailing lists.")
    with transaction.atomic():
        mailing_list = MailingList.objects.select_for_update().get(pk=mailing_list.pk)
        if mailing_list.active == active:
            return mailing_list
        mailing_list.active = active
        mailing_list.updated_at = timezone.now()
        mailing_list.save(update_fields=["active", "updated_at"])
        audit("campaigns.list.restore" if active else "campaigns.list.archive", actor=actor,
              obj=mailing_list, before={"active": not active}, after={"active": active})
    return mailing_list


def delete_list(mailing_list: MailingList, *, actor) -> None:
    """Delete a list with its subscriptions and imports; the audit row keeps how many."""
    require(actor, "campaigns.delete_mailinglist", mailing_list,
            denied="Only Mail Managers can delete mailing lists.")
    with transaction.atomic():
        mailing_list = MailingList.objects.select_for_update().get(pk=mailing_list.pk)
        if ImportJob.objects.filter(mailing_list=mailing_list,
                                    state__in=[ImportJob.State.QUEUED,
                                               ImportJob.State.RUNNING]).exists():
            raise ValidationError("An import into this list is running; wait until it ends.")
        count = mailing_list.subscriptions.count()
        audit("campaigns.list.delete", actor=actor, obj=mailing_list,
              before={**snapshot(mailing_list, LIST_FIELDS), "subscriptions": count})
        mailing_list.delete()


# --- subscriptions -------------------------------------------------------------------------

def _require_subscriber_writer(actor, mailing_list: MailingList) -> None:
    require(actor, "campaigns.change_subscription", mailing_list,
            denied="Only Mail Managers can change subscriptions.")


def subscribe(mailing_list: MailingList, partner: Partner, *, actor,
              source: str = Subscription.Source.MANUAL, consent_how: str = "",
              consent_at: datetime | None = None, consent_ip: str | None = None,
              resubscribe: bool = False) -> Subscription:
    """Put a contact on a list. Idempotent: a contact already on it keeps its subscription
    as it is. On a double opt-in list a new subscriber is "unconfirmed". Someone who left
    the list (unsubscribed, bounced, complained) comes back only with `resubscribe=True`;
    a blacklisted contact is refused."""
    _require_subscriber_writer(actor, mailing_list)
    if partner.company_id != mailing_list.company_id:
        raise ValidationError("This contact belongs to another company.")
    if source not in Subscription.Source.values:
        raise ValidationError({"source": f"Unknown source {source!r}."})
    if partner.is_blacklisted:
        raise ValidationError(f"{partner.email or partner} is blacklisted (suppressed): "
                              "Mailroom sends them no bulk mail.")
    try:
        email = email_snapshot(partner.email)
    except InvalidAddress as exc:
        raise ValidationError(f"The contact's address cannot receive mail: {exc}") from None
    now = timezone.now()
    status = Status.UNCONFIRMED if mailing_list.double_opt_in else Status.SUBSCRIBED
    with transaction.atomic():
        current = (Subscription.objects.select_for_update()
                   .filter(mailing_list=mailing_list, partner=partner).first())
        if current is not None:
            if current.status not in LEFT:
                return current
            if not resubscribe:
                raise ValidationError(f"{current.email} left this list "
                                      f"({current.get_status_display().lower()}); only their "
                                      "own new consent puts them back.")
            current.status = status
            current.source = source
            current.email = email
            current.consent_how = consent_how[:500]
            current.consent_at = consent_at or now
            current.consent_ip = consent_ip or None
            current.unsubscribed_at = None
            current.confirmed_at = now if status == Status.SUBSCRIBED else None
            current.updated_at = now
            current.full_clean()
            current.save()
            _ask_to_confirm(current)
            return current
        subscription = Subscription(
            company_id=mailing_list.company_id, mailing_list=mailing_list, partner=partner,
            email=email, status=status, source=source, consent_how=consent_how[:500],
            consent_at=consent_at or now, consent_ip=consent_ip or None,
            confirmed_at=now if status == Status.SUBSCRIBED else None,
            created_at=now, updated_at=now)
        subscription.full_clean(validate_constraints=False)
        subscription.save()
        _ask_to_confirm(subscription)
    return subscription


def _ask_to_confirm(subscription: Subscription) -> None:
    """A new unconfirmed subscriber gets the confirmation mail, queued in this transaction.
    Imports never come here (their people consented before; the import records how)."""
    if subscription.status == Status.UNCONFIRMED and \
            subscription.source != Subscription.Source.IMPORT:
        confirmation.queue_confirmation(subscription)


def unsubscribe(subscription: Subscription, *, actor, reason: str = "") -> Subscription:
    """Take the contact off the list. Idempotent: the first unsubscription's time is kept."""
    _require_subscriber_writer(actor, subscription.mailing_list)
    with transaction.atomic():
        subscription = Subscription.objects.select_for_update().get(pk=subscription.pk)
        if subscription.status == Status.UNSUBSCRIBED:
            return subscription
        now = timezone.now()
        subscription.status = Status.UNSUBSCRIBED
        subscription.unsubscribed_at = now
        subscription.updated_at = now
        if reason:
            subscription.consent_how = f"{subscription.consent_how} · left: {reason}"[-500:]
        subscription.save(update_fields=["status", "unsubscribed_at", "updated_at",
                                         "consent_how"])
    return subscription


def set_status(subscription: Subscription, status: str, *, actor) -> Subscription:
    """Set a status by hand (Mail Managers), e.g. bounced or complained from a report."""
    if status not in Status.values:
        raise ValidationError({"status": f"Unknown status {status!r}."})
    if status == Status.UNSUBSCRIBED:
        return unsubscribe(subscription, actor=actor)
    _require_subscriber_writer(actor, subscription.mailing_list)
    with transaction.atomic():
        subscription = Subscription.objects.select_for_update().get(pk=subscription.pk)
        if subscription.status == status:
            return subscription
        now = timezone.now()
        subscription.status = status
        subscription.updated_at = now
        if status == Status.SUBSCRIBED:
            subscription.confirmed_at = subscription.confirmed_at or now
            subscription.unsubscribed_at = None
        subscription.save(update_fields=["status", "updated_at", "confirmed_at",
                                         "unsubscribed_at"])
    return subscription


# --- imports -------------------------------------------------------------------------------

def _require_importer(actor, mailing_list: MailingList) -> None:
    require(actor, "campaigns.add_importjob", mailing_list,
            denied="Only Mail Managers can import contacts.")


def _clean_filename(filename: str) -> str:
    name = "".join(ch for ch in (filename or "") if ch.isprintable()).strip()
    return (name or "upload")[-255:]


def create_import(mailing_list: MailingList, *, actor, filename: str, content: bytes,
                  file_format: str, consent_how: str, mapping: dict, has_header: bool,
                  total: int) -> ImportJob:
    """Keep the uploaded file (a blob) and open an import at the column-mapping step."""
    _require_importer(actor, mailing_list)
    if not mailing_list.active:
        raise ValidationError("This list is archived; restore it before importing.")
    if not (consent_how or "").strip():
        raise ValidationError({"consent_how": "Say how these people agreed to receive mail "
                                              "(kept as consent evidence)."})
    sha256, size = store_bytes(content)
    job = ImportJob(company_id=mailing_list.company_id, mailing_list=mailing_list,
                    filename=_clean_filename(filename), file_format=file_format,
                    file_sha256=sha256, file_size=size, consent_how=consent_how.strip()[:500],
                    mapping=mapping, has_header=has_header, total=total,
                    created_by=actor if actor is not None and actor.pk else None)
    with transaction.atomic():
        job.save()
    return job


def start_import(job: ImportJob, *, actor, mapping: dict, has_header: bool,
                 total: int) -> ImportJob:
    """Confirm the mapping: the import is queued for the worker."""
    _require_importer(actor, job.mailing_list)
    if "email" not in mapping:
        raise ValidationError({"email": "Choose the column that holds the email address."})
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().get(pk=job.pk)
        if job.state != ImportJob.State.DRAFT:
            raise ValidationError("This import has already been started.")
        job.mapping = mapping
        job.has_header = has_header
        job.total = total
        job.state = ImportJob.State.QUEUED
        job.save(update_fields=["mapping", "has_header", "total", "state"])
        audit("campaigns.import.start", actor=actor, obj=job.mailing_list,
              after={"import": job.pk, "file": job.filename, "rows": total,
                     "mapping": mapping, "consent_how": job.consent_how})
    return job


def retry_import(job: ImportJob, *, actor) -> ImportJob:
    """A failed import goes back to the queue; it resumes after the rows already done."""
    _require_importer(actor, job.mailing_list)
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().get(pk=job.pk)
        if job.state != ImportJob.State.FAILED:
            raise ValidationError("Only a failed import can be retried.")
        job.state = ImportJob.State.QUEUED
        job.error = ""
        job.finished_at = None
        job.lease_owner = ""
        job.lease_expires_at = None
        job.save(update_fields=["state", "error", "finished_at", "lease_owner",
                                "lease_expires_at"])
        audit("campaigns.import.retry", actor=actor, obj=job.mailing_list,
              after={"import": job.pk, "from_row": job.done})
    return job
