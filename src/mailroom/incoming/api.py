"""Received mail through the API (/api/v1/inbound): the inbound log, one message with its
routing trace, its raw bytes, reprocessing, and ingesting a raw message (providers' inbound
webhooks: Mailgun, Postmark, SES… forward the message here).

Ingest stores through `incoming.services.accept` exactly like the gateway and the fetchers:
the row exists (and the bytes are fsynced) before we answer 202, and the worker's router
decides later. An `Idempotency-Key` makes a retried webhook store the message once.

No `from __future__ import annotations` here: ninja reads the view functions' annotations.
"""

import base64
import binascii
import json
from datetime import datetime
from typing import Annotated, Any, Literal

from django.http import HttpResponse
from ninja import Header, Path, Query, Router, Schema, Status
from ninja.responses import codes_4xx
from pydantic import AfterValidator, Field
from pydantic import ValidationError as PydanticValidationError

from mailroom.api import fields as F
from mailroom.api.auth import actor, require_perm
from mailroom.api.errors import ApiError, ErrorOut, FieldErrors, field_error, idempotency_key_from
from mailroom.api.specs import StrictIn
from mailroom.core import record_types
from mailroom.core.blobs import BlobError, BlobMissing
from mailroom.core.models import Company
from mailroom.incoming import intake, services
from mailroom.incoming.models import InboundMail
from mailroom.lib import inbound
from mailroom.routing.services import resolve

prefix = "/inbound"
router = Router(tags=["Inbound mail"])

ERRORS = {codes_4xx: ErrorOut}
MAIL_ID = Path(..., ge=1, le=F.MAX_ID, description="The received message's id.")
MAX_RECIPIENTS = 100
CHUNK = 256 * 1024
RAW_TYPES = {"message/rfc822", "application/octet-stream", "text/plain"}
StateName = Literal[tuple(InboundMail.State.values)]
DecisionName = Literal[tuple(InboundMail.Decision.values)]
Address = Annotated[F.Line, Field(min_length=3, max_length=320)]


def _utc(value: datetime) -> datetime:
    import datetime as dt

    return F.check_datetime(value).astimezone(dt.UTC)


Moment = Annotated[datetime, AfterValidator(_utc)]


# --- schemas -------------------------------------------------------------------------------

class RecordLinkOut(Schema):
    type: str
    id: int


class InboundSummary(Schema):
    id: int
    company_id: int
    source: str
    state: str
    decision: str
    rule: str
    reason: str
    received_at: datetime
    processed_at: datetime | None
    message_id: str
    from_address: str
    subject: str
    envelope_from: str
    envelope_to: list[str]
    raw_size: int
    is_automatic: bool
    record: RecordLinkOut | None
    attempts: int
    error: str


class InboundOut(InboundSummary):
    trace: list[Any] = Field(description="Every rule's verdict, in order.")
    auth_summary: str = Field(description="SPF/DKIM/DMARC as Mailroom computed them.")
    server_id: int | None
    chatter_message_id: int | None
    bounce_reply_id: int | None
    raw_sha256: str
    raw_url: str


class Waiting(Schema):
    count: int = Field(description="Messages the gateway accepted (and answered 250) that "
                                   "are not in the log yet.")
    oldest: datetime | None = Field(description="When the oldest of them arrived.")


class InboundList(Schema):
    count: int
    limit: int
    offset: int
    items: list[InboundSummary]
    waiting: Waiting = Field(description=(
        "On a SQLite database the gateway stores what it accepts in an intake spool that a "
        "worker's router step takes into the log within seconds: what waits there now, for "
        "the companies you see. A count that stays, with an old `oldest`, means no worker "
        "runs the router step."))


class InboundFilters(Schema):
    state: StateName | None = F.optional()
    decision: DecisionName | None = F.optional()
    since: Moment | None = F.optional(description="Received at or after this time.")
    company_id: F.Id | None = F.optional()
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=10_000_000)


class IngestQuery(Schema):
    recipient: list[Address] | None = F.optional(
        max_length=MAX_RECIPIENTS,
        description="The envelope recipients (repeat the parameter). Default: the message's "
                    "To and Cc.")


class IngestJson(StrictIn):
    raw_base64: str = Field(..., description="The RFC 5322 message, base64-encoded.")
    recipients: list[Address] = Field(default_factory=list, max_length=MAX_RECIPIENTS)


class Accepted(Schema):
    id: int
    state: str
    url: str


# --- output --------------------------------------------------------------------------------

def _record_link(mail: InboundMail) -> dict | None:
    if mail.content_type_id is None or mail.object_id is None:
        return None
    model = mail.content_type.model_class()
    record_type = record_types.for_model(model) if model is not None else None
    key = record_type.key if record_type else (
        f"{mail.content_type.app_label}.{mail.content_type.model}")
    return {"type": key, "id": mail.object_id}


def _url(mail: InboundMail) -> str:
    return f"/api/v1{prefix}/{mail.pk}"


def summary_out(mail: InboundMail) -> dict:
    return {
        **{name: getattr(mail, name) for name in (
            "id", "company_id", "source", "state", "decision", "rule", "reason", "received_at",
            "processed_at", "message_id", "from_address", "subject", "envelope_from",
            "raw_size", "is_automatic", "attempts", "error")},
        "envelope_to": [str(a) for a in mail.envelope_to or []],
        "record": _record_link(mail),
    }


def inbound_out(mail: InboundMail) -> dict:
    return {
        **summary_out(mail),
        "trace": mail.trace if isinstance(mail.trace, list) else [mail.trace],
        "auth_summary": mail.auth_summary, "server_id": mail.server_id,
        "chatter_message_id": mail.chatter_message_id,
        "bounce_reply_id": mail.bounce_reply_id, "raw_sha256": mail.raw_sha256,
        "raw_url": f"{_url(mail)}/raw",
    }


def visible_mails(user):
    require_perm(user, InboundMail, "view")
    return InboundMail.objects.for_user(user).select_related("content_type")


def get_mail(user, pk: int) -> InboundMail:
    mail = visible_mails(user).filter(pk=pk).first()
    if mail is None:
        raise ApiError(404, "No such message.")
    return mail


# --- reading the log -----------------------------------------------------------------------

@router.get("", response={200: InboundList, **ERRORS}, operation_id="inbound_list",
            summary="The inbound log, newest first",
            description="Filter by state (received, done, quarantined), decision and time.")
def list_inbound(request, filters: Query[InboundFilters]):
    queryset = visible_mails(actor(request))
    if filters.state:
        queryset = queryset.filter(state=filters.state)
    if filters.decision:
        queryset = queryset.filter(decision=filters.decision)
    if filters.since:
        queryset = queryset.filter(received_at__gte=filters.since)
    if filters.company_id:
        queryset = queryset.filter(company_id=filters.company_id)
    count = queryset.count()
    page = queryset.order_by("-received_at", "-id")[filters.offset:filters.offset
                                                     + filters.limit]
    user = actor(request)
    companies = None if user.is_superuser else list(user.company_ids())  # None: all
    if filters.company_id:
        companies = [filters.company_id] if companies is None or \
            filters.company_id in companies else []
    waiting, oldest = intake.waiting(companies)
    return {"count": count, "limit": filters.limit, "offset": filters.offset,
            "items": [summary_out(m) for m in page],
            "waiting": {"count": waiting, "oldest": oldest}}


@router.get("/{id}", response={200: InboundOut, **ERRORS}, operation_id="inbound_get",
            summary="A received message: the decision, its reason and every rule's verdict")
def get_inbound(request, id: int = MAIL_ID):
    return inbound_out(get_mail(actor(request), id))


RAW_DOC = {"responses": {"200": {
    "description": "The message exactly as received.",
    "content": {"message/rfc822": {"schema": {"type": "string", "format": "binary"}}},
}}}


@router.get("/{id}/raw", response={200: None, **ERRORS}, operation_id="inbound_raw",
            summary="The message exactly as received (message/rfc822)", openapi_extra=RAW_DOC)
def get_raw(request, id: int = MAIL_ID):
    mail = get_mail(actor(request), id)
    try:
        raw = services.raw_bytes(mail)
    except (BlobMissing, FileNotFoundError):
        raise ApiError(404, "The raw message is missing from storage.") from None
    except BlobError:
        raise ApiError(503, "The file store cannot be reached just now; try again in a "
                            "minute.") from None
    response = HttpResponse(raw, content_type="message/rfc822")
    response["Content-Disposition"] = f'attachment; filename="inbound-{mail.pk}.eml"'
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


@router.post("/{id}/reprocess", response={200: InboundOut, **ERRORS},
             operation_id="inbound_reprocess",
             summary="Route a quarantined (or routed) message again (Mail Managers)",
             description="The message goes back to 'received'; the worker routes it at its "
                         "next pass. Answers 409 when it is already waiting.")
def reprocess(request, id: int = MAIL_ID):
    user = actor(request)
    mail = get_mail(user, id)
    if not services.reprocess([mail], actor=user):
        raise ApiError(409, "This message is already waiting to be routed.")
    return inbound_out(get_mail(user, id))


# --- ingesting -----------------------------------------------------------------------------

def _too_large(size: int | None = None) -> ApiError:
    limit = services.max_message_bytes()
    size_words = f"{size:,} bytes; " if size is not None else ""
    return ApiError(413, f"The message is too large: {size_words}the limit is {limit:,} bytes.",
                    "body")


def _read_body(request, cap: int) -> bytes:
    """At most `cap` bytes of the request body, read from the stream: `request.body` would
    refuse anything over DATA_UPLOAD_MAX_MEMORY_SIZE with Django's HTML 400, and a huge
    body would be held in memory before we could say 413."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > cap:
        raise _too_large(declared)
    if getattr(request, "_body", None) is not None:
        data = request._body
    else:
        chunks, total = [], 0
        while True:
            chunk = request.read(CHUNK)
            if not chunk:
                break
            total += len(chunk)
            if total > cap:
                raise _too_large()
            chunks.append(chunk)
        data = b"".join(chunks)
    if len(data) > cap:
        raise _too_large(len(data))
    return data


def _from_json(data: bytes) -> tuple[bytes, list[str]]:
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        raise ApiError(400, "The body is not valid JSON.", "body") from None
    try:
        payload = IngestJson.model_validate(document)
    except PydanticValidationError as exc:
        raise FieldErrors([
            (".".join(str(p) for p in e["loc"]) or "body", e["msg"].removeprefix("Value error, "))
            for e in exc.errors()]) from None
    encoded = "".join(payload.raw_base64.split())
    if len(encoded) // 4 * 3 - 2 > services.max_message_bytes():
        raise _too_large()
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise field_error("raw_base64", "This is not valid base64.") from None
    return raw, list(payload.recipients)


def _company_of_recipients(user, addresses: list[str], field: str) -> int:
    """Every named recipient is one of ours, in one company the caller belongs to."""
    allowed = set(user.company_ids())
    errors, companies = [], set()
    for index, address in enumerate(addresses):
        target = resolve(address)
        if target is None or not (user.is_superuser or target.company_id in allowed):
            errors.append((f"{field}.{index}", f"{address} is not an address your company "
                                               "receives mail on."))
        else:
            companies.add(target.company_id)
    if errors:
        raise FieldErrors(errors)
    if len(companies) > 1:
        raise field_error(field, "The recipients belong to different companies; send the "
                                 "message once per company.")
    return companies.pop()


def _company_of_headers(user, raw: bytes) -> int:
    """No envelope: the router will read To, Cc and Delivered-To; at least one of them must
    be ours (others may be anyone the sender copied)."""
    try:
        head = inbound.parse_head(raw)
    except inbound.InboundError as exc:
        raise ApiError(422, f"The message cannot be read: {exc}", "body") from None
    addresses = [a for _, a in head.to + head.cc]
    addresses += head.get_all("Delivered-To") + head.get_all("X-Original-To")
    allowed = set(user.company_ids())
    found = []
    for address in addresses:
        target = resolve(address)
        if target is not None and (user.is_superuser or target.company_id in allowed):
            found.append(target.company_id)
    if not found:
        raise field_error("recipient", "None of the message's To or Cc addresses is one your "
                                       "company receives mail on; name it with ?recipient=.")
    current = user.current_company_id
    return current if current in found else found[0]


INGEST_DOC = {"requestBody": {"required": True, "content": {
    "message/rfc822": {"schema": {"type": "string", "format": "binary",
                                  "description": "The raw RFC 5322 message."}},
    "application/json": {"schema": {
        "type": "object", "additionalProperties": False, "required": ["raw_base64"],
        "properties": {
            "raw_base64": {"type": "string", "description": "The message, base64-encoded."},
            "recipients": {"type": "array", "maxItems": MAX_RECIPIENTS,
                           "items": {"type": "string", "minLength": 3, "maxLength": 320}},
        }}},
}}}


@router.post("", response={202: Accepted, 200: Accepted, **ERRORS}, operation_id="inbound_ingest",
             summary="Receive a raw message (providers' inbound webhooks; Mail Managers)",
             description="The body is the raw message (`Content-Type: message/rfc822`), or JSON "
                         "`{\"raw_base64\": …, \"recipients\": […]}`. Recipients come from "
                         "`?recipient=` (repeatable) or the JSON; without any, the router reads "
                         "To and Cc. Every named recipient must be an address of your company "
                         "(422 names the one that is not). Answers 202 once the message is "
                         "stored; 200 with the first message when the `Idempotency-Key` was "
                         "already used; 413 over MAILROOM_INBOUND_MAX_BYTES.",
             openapi_extra=INGEST_DOC)
def ingest(request, query: Query[IngestQuery],
           idempotency_header: str | None = Header(None, alias="Idempotency-Key",
                                                    max_length=200)):
    user = actor(request)
    require_perm(user, InboundMail, "change")
    key = idempotency_key_from(None, idempotency_header)
    limit = services.max_message_bytes()
    content_type = (request.content_type or "").lower()
    recipients = list(query.recipient or [])
    field = "recipient"
    if content_type == "application/json":
        raw, named = _from_json(_read_body(request, limit * 4 // 3 + 64 * 1024))
        if named and recipients:
            raise field_error("recipients", "Name the recipients in ?recipient= or in the "
                                            "JSON, not both.")
        if named:
            recipients, field = named, "recipients"
    elif content_type in RAW_TYPES or not content_type:
        raw = _read_body(request, limit)
    else:
        raise ApiError(415, "Send the raw message as message/rfc822, or JSON with "
                            "raw_base64.", "body")
    if not raw.strip():
        raise ApiError(400, "The message is empty: send the raw RFC 5322 message as the body.",
                       "body")
    if len(raw) > limit:
        raise _too_large(len(raw))
    if recipients:
        company_id = _company_of_recipients(user, recipients, field)
    else:
        company_id = _company_of_headers(user, raw)
    source_key = f"api:{company_id}:{key}" if key else None
    if source_key:
        existing = InboundMail.objects.filter(source_key=source_key).first()
        if existing is not None:
            return Status(200, {"id": existing.pk, "state": existing.state,
                                "url": _url(existing)})
    try:
        mail = services.accept(raw, company=Company.objects.get(pk=company_id),
                               source=InboundMail.Source.API, source_key=source_key,
                               envelope_to=recipients)
    except services.TooLarge:
        raise _too_large(len(raw)) from None
    return Status(202, {"id": mail.pk, "state": mail.state, "url": _url(mail)})
