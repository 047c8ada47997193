"""The outbox through the API: enqueue an email, read its status and attempts, list, retry,
cancel (/api/v1/emails).

Everything goes through `outgoing.services`; this module turns JSON into its arguments, and
api_output.py turns its answers into JSON. A retried enqueue with the same idempotency key
(body field or the `Idempotency-Key` header) answers 200 with the first mail instead of 201
with a new one.

No `from __future__ import annotations` here: ninja reads the view functions' annotations.
"""

import base64
import binascii
import datetime as dt
from datetime import datetime
from email.utils import getaddresses
from typing import Annotated, Any, Literal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone
from ninja import Header, Path, Query, Router, Schema, Status
from ninja.responses import codes_4xx
from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema

from mailroom.api import fields as F
from mailroom.api import writing
from mailroom.api.auth import actor, require_perm
from mailroom.api.errors import (
    ApiError,
    ErrorOut,
    FieldErrors,
    django_errors,
    field_error,
    idempotency_key_from,
)
from mailroom.api.record_routes import api_record_types
from mailroom.api.specs import StrictIn
from mailroom.core import record_types
from mailroom.core.models import Company
from mailroom.lib.addresses import InvalidAddress, normalize_email
from mailroom.outgoing import services
from mailroom.outgoing.api_output import PRIORITIES, EmailList, EmailOut, email_out, summary_out
from mailroom.outgoing.models import FailureType, MailServer, OutgoingMail, OutgoingRecipient

prefix = "/emails"
router = Router(tags=["Emails"])

_MIMETYPE = r"^[A-Za-z0-9][\w.+-]*/[A-Za-z0-9][\w.+-]*$"

PriorityName = Literal["immediate", "high", "normal", "low"]
StateName = Literal[tuple(OutgoingMail.State.values)]
FailureName = Literal[tuple(FailureType.values)]


def _record_keys() -> tuple[str, ...]:
    return tuple(rt.key for rt in api_record_types()) or ("contacts.partner",)


RecordTypeName = Literal[_record_keys()]


def in_utc(value: datetime) -> datetime:
    """Aware and in UTC: PostgreSQL refuses offsets beyond ±15:59 that ISO 8601 allows."""
    return F.check_datetime(value).astimezone(dt.UTC)


Moment = Annotated[datetime, AfterValidator(in_utc)]


def max_attachment_bytes() -> int:
    return settings.MAX_ATTACHMENT_BYTES


# --- input ---------------------------------------------------------------------------------

def check_address(value: str) -> str:
    try:
        normalize_email(value)
    except InvalidAddress as exc:
        raise ValueError(str(exc)) from None
    return value


MAILBOX_MAX = 320  # OutgoingMail.email_from and reply_to


def check_mailbox(value: str) -> str:
    """One "Name <addr>" or "addr", rewritten in one canonical form so that what is stored
    is exactly what was checked (parsers disagree on odd inputs)."""
    if not value:
        return value
    found = getaddresses([value])
    if len(found) != 1 or not found[0][1] or "@" not in found[0][1]:
        raise ValueError("Use one address: 'name@example.com' or 'Name <name@example.com>'.")
    name, address = found[0]
    check_address(address)
    mailbox = quote_mailbox(name, address)
    if len(mailbox) > MAILBOX_MAX:
        raise ValueError(f"At most {MAILBOX_MAX} characters with the name quoted.")
    return mailbox


def quote_mailbox(name: str, address: str) -> str:
    if not name:
        return address
    name = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{name}" <{address}>'


class RecipientIn(StrictIn):
    name: F.Line = Field("", max_length=200)
    address: Annotated[F.Line, AfterValidator(check_address)] = Field(..., max_length=320)


def _recipient_from_string(value: Any) -> Any:
    return {"address": value} if isinstance(value, str) else value


Recipient = Annotated[
    RecipientIn,
    BeforeValidator(_recipient_from_string),
    WithJsonSchema({"anyOf": [
        {"type": "string", "maxLength": 320, "format": "email"},
        {"type": "object", "additionalProperties": False, "required": ["address"],
         "properties": {"name": {"type": "string", "maxLength": 200},
                        "address": {"type": "string", "maxLength": 320, "format": "email"}}},
    ]}),
]
Recipients = Annotated[list[Recipient], Field(default_factory=list, max_length=500)]


class AttachmentIn(StrictIn):
    name: F.Line = Field(..., min_length=1, max_length=255)
    mimetype: str = Field("application/octet-stream", max_length=255, pattern=_MIMETYPE)
    content_base64: str = Field(..., description="The file, base64-encoded (RFC 4648).")
    content_id: F.Line = Field("", max_length=255,
                               description="For inline images referenced as cid:… in html.")


class EmailRecordIn(StrictIn):
    type: RecordTypeName = Field(..., description="A record type key, e.g. 'crm.lead'.")
    id: F.Id


class EmailIn(StrictIn):
    company_id: F.Id | None = Field(None, description="Defaults to your current company.")
    email_from: Annotated[F.Line, AfterValidator(check_mailbox)] = Field(
        "", max_length=320, description="Defaults to the company's name and address.")
    to: Recipients
    cc: Recipients
    bcc: Recipients
    subject: F.Line = Field("", max_length=998)
    html: F.Text = Field("", max_length=10_000_000)
    text: F.Text = Field("", max_length=10_000_000)
    attachments: list[AttachmentIn] = Field(
        default_factory=list, max_length=100,
        description="Each file and all of them together at most MAX_ATTACHMENT_BYTES (25 MB "
                    "by default) once decoded; the whole request at most 30 MB.")
    record: EmailRecordIn | None = None
    priority: PriorityName = "normal"
    purpose: Literal["transactional", "bulk"] = "transactional"
    scheduled_at: Moment | None = Field(None, description="Not sent before this time.")
    expires_at: Moment | None = Field(None, description="Given up if not sent by then.")
    server_id: F.Id | None = Field(None, description="Send through this server only.")
    reply_to: Annotated[F.Line, AfterValidator(check_mailbox)] = Field("", max_length=320)
    headers: dict[str, F.Line] = Field(default_factory=dict, max_length=50,
                                       description="Extra headers, e.g. X-Campaign.")
    is_automatic: bool = Field(False, description="Sent with Auto-Submitted: auto-generated.")
    idempotency_key: F.Line | None = Field(
        None, min_length=1, max_length=200,
        description="Or the Idempotency-Key header: a retried call returns the first mail.")


# --- listing filters ---------------------------------------------------------------------

class EmailFilters(Schema):
    state: StateName | None = F.optional()
    priority: PriorityName | None = F.optional()
    failure_type: FailureName | None = F.optional()
    server_id: F.Id | None = F.optional(description="Chosen for or sent through this server.")
    record_type: RecordTypeName | None = F.optional()
    record_id: F.Id | None = F.optional()
    company_id: F.Id | None = F.optional()
    created_after: Moment | None = F.optional()
    created_before: Moment | None = F.optional()
    q: F.Text | None = F.optional(max_length=200, description="Search subject and recipients.")
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=10_000_000)


# --- helpers -------------------------------------------------------------------------------

def visible_mails(user):
    require_perm(user, OutgoingMail, "view")
    return OutgoingMail.objects.for_user(user).select_related("content_type")


def get_mail(user, pk: int) -> OutgoingMail:
    """The mail if the user may see it, else 404 (other companies' mails do not exist)."""
    mail = (visible_mails(user).filter(pk=pk)
            .prefetch_related("recipients", "attachments", "attempts").first())
    if mail is None:
        raise ApiError(404, "No such email.")
    return mail


def _decode_attachments(items: list[AttachmentIn]) -> list[services.FileToSend]:
    cap = max_attachment_bytes()
    megabytes = f"{cap / (1024 * 1024):g} MB"
    files, errors, total = [], [], 0
    for index, item in enumerate(items):
        field = f"attachments.{index}.content_base64"
        encoded = "".join(item.content_base64.split())  # line-wrapped base64 is fine
        if len(encoded) // 4 * 3 - encoded[-2:].count("=") > cap:
            errors.append((field, f"{item.name} is larger than the {megabytes} limit."))
            continue
        try:
            content = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            errors.append((field, "This is not valid base64."))
            continue
        total += len(content)
        files.append(services.FileToSend(name=item.name, content=content,
                                         mimetype=item.mimetype.lower(),
                                         content_id=item.content_id))
    if not errors and total > cap:
        errors.append(("attachments", f"The attachments together exceed the {megabytes} "
                                      "limit."))
    if errors:
        raise FieldErrors(errors)
    return files


def _linked_record(user, link: EmailRecordIn, company_id: int):
    model = record_types.get(link.type).model
    require_perm(user, model, "view")
    record = writing.visible(model, user).filter(pk=link.id).first()
    if record is None:
        raise ApiError(404, "No such record.", "record.id")
    if record.company_id != company_id:
        raise field_error("record.id", "The record belongs to another company than the email.")
    return record


def _server(user, server_id: int, company_id: int) -> MailServer:
    server = MailServer.objects.for_user(user).filter(pk=server_id,
                                                      company_id=company_id).first()
    if server is None:
        raise field_error("server_id", "No such outgoing server in the email's company.")
    return server


def _default_sender(company: Company) -> str:
    if not company.email:
        raise field_error("email_from", "The company has no email address: send email_from.")
    mailbox = quote_mailbox(company.name, company.email)
    return mailbox if len(mailbox) <= MAILBOX_MAX else company.email


# --- endpoints -----------------------------------------------------------------------------

ERRORS = {codes_4xx: ErrorOut}
EMAIL_ID = Path(..., ge=1, le=F.MAX_ID, description="The email's id.")


@router.post("", response={201: EmailOut, 200: EmailOut, **ERRORS}, operation_id="emails_send",
             summary="Queue an email",
             description="Answers 201 with the new email, or 200 with the existing one when "
                         "the idempotency key was already used in the company.")
def send_email(request, payload: EmailIn,
               idempotency_header: str | None = Header(None, alias="Idempotency-Key",
                                                        max_length=200)):
    user = actor(request)
    require_perm(user, OutgoingMail, "view")
    company_id = writing.company_for_create(user, payload.company_id)
    key = idempotency_key_from(payload.idempotency_key, idempotency_header)
    if key:
        existing = OutgoingMail.objects.filter(company_id=company_id,
                                               idempotency_key=key).first()
        if existing is not None:
            return Status(200, email_out(get_mail(user, existing.pk)))
    company = Company.objects.get(pk=company_id)
    now = timezone.now()
    if payload.expires_at and payload.expires_at <= now:
        raise field_error("expires_at", "This time is already past.")
    if payload.expires_at and payload.scheduled_at and (
            payload.expires_at <= payload.scheduled_at):
        raise field_error("expires_at", "The email would expire before it is scheduled.")
    headers = payload.headers  # names, values and reserved names: checked by enqueue
    files = _decode_attachments(payload.attachments)
    record = _linked_record(user, payload.record, company_id) if payload.record else None
    server = _server(user, payload.server_id, company_id) if payload.server_id else None
    try:
        mail = services.enqueue(
            company=company, email_from=payload.email_from or _default_sender(company),
            to=[(r.name, r.address) for r in payload.to],
            cc=[(r.name, r.address) for r in payload.cc],
            bcc=[(r.name, r.address) for r in payload.bcc],
            subject=payload.subject, html=payload.html, text=payload.text, attachments=files,
            record=record, priority=PRIORITIES[payload.priority], purpose=payload.purpose,
            scheduled_at=payload.scheduled_at, expires_at=payload.expires_at, server=server,
            reply_to=payload.reply_to, headers=headers, is_automatic=payload.is_automatic,
            idempotency_key=key, actor=user)
    except ValidationError as exc:
        raise FieldErrors(django_errors(exc, rename={"server": "server_id"})) from None
    status = 201 if mail.created_at >= now else 200  # 200: a concurrent call won the key
    return Status(status, email_out(get_mail(user, mail.pk)))


@router.get("", response={200: EmailList, **ERRORS}, operation_id="emails_list",
            summary="List emails, newest first",
            description="Filter by state, priority, failure type, server, record, company and "
                        "creation time; `q` searches the subject and the recipients.")
def list_emails(request, filters: Query[EmailFilters]):
    user = actor(request)
    queryset = visible_mails(user)
    wanted = filters.model_dump(exclude_none=True)
    limit, offset = wanted.pop("limit"), wanted.pop("offset")
    if "state" in wanted:
        queryset = queryset.filter(state=wanted["state"])
    if "priority" in wanted:
        queryset = queryset.filter(priority=PRIORITIES[wanted["priority"]])
    if "failure_type" in wanted:
        queryset = queryset.filter(failure_type=wanted["failure_type"])
    if "server_id" in wanted:
        queryset = queryset.filter(Q(server_id=wanted["server_id"])
                                   | Q(used_server_id=wanted["server_id"]))
    if "record_type" in wanted:
        model = record_types.get(wanted["record_type"]).model
        queryset = queryset.filter(content_type__app_label=model._meta.app_label,
                                   content_type__model=model._meta.model_name)
    if "record_id" in wanted:
        queryset = queryset.filter(object_id=wanted["record_id"])
    if "company_id" in wanted:
        queryset = queryset.filter(company_id=wanted["company_id"])
    if "created_after" in wanted:
        queryset = queryset.filter(created_at__gte=wanted["created_after"])
    if "created_before" in wanted:
        queryset = queryset.filter(created_at__lt=wanted["created_before"])
    q = wanted.get("q", "").strip()
    if q:
        matching = OutgoingRecipient.objects.filter(
            Q(address__icontains=q) | Q(name__icontains=q)).values("mail_id")
        queryset = queryset.filter(Q(subject__icontains=q) | Q(pk__in=matching))
    count = queryset.count()
    page = queryset.order_by("-created_at", "-id").prefetch_related("recipients")[
        offset:offset + limit]
    return {"count": count, "limit": limit, "offset": offset,
            "items": [summary_out(m) for m in page]}


@router.get("/{id}", response={200: EmailOut, **ERRORS}, operation_id="emails_get",
            summary="An email: state, recipients, attempts")
def get_email(request, id: int = EMAIL_ID):
    return email_out(get_mail(actor(request), id))


def _act(request, id: int, action, verb: str) -> dict:
    user = actor(request)
    mail = get_mail(user, id)
    if not action([mail], actor=user):
        raise ApiError(409, f"This email is {mail.get_state_display().lower()}; it cannot be "
                            f"{verb}.")
    return email_out(get_mail(user, id))


@router.post("/{id}/retry", response={200: EmailOut, **ERRORS}, operation_id="emails_retry",
             summary="Queue a failed, deferred, uncertain or cancelled email again "
                     "(Mail Managers)",
             description="Recipients that already accepted it are not sent it again.")
def retry_email(request, id: int = EMAIL_ID):
    return _act(request, id, services.retry, "retried")


@router.post("/{id}/cancel", response={200: EmailOut, **ERRORS}, operation_id="emails_cancel",
             summary="Cancel an email that has not been sent (Mail Managers)")
def cancel_email(request, id: int = EMAIL_ID):
    return _act(request, id, services.cancel, "cancelled")
