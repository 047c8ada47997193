"""Letters through the API (/api/v1/letters): post a record, follow it, cancel or retry it.

Letters of other companies answer 404, exactly like ones that do not exist. Writes go through
`letters.services`, so the API refuses what the screens refuse, in the same words.

No `from __future__ import annotations` here: ninja reads the view functions' annotations.
"""

import uuid
from datetime import datetime
from decimal import Decimal

from django.contrib.auth.models import AnonymousUser
from django.urls import reverse
from ninja import Header, Query, Router, Schema
from pydantic import Field

from mailroom.api.auth import actor, require_perm
from mailroom.api.crud import ERRORS, Page, list_schema, page, row_id
from mailroom.api.errors import ApiError, field_error, idempotency_key_from
from mailroom.contacts.models import Partner
from mailroom.core import record_types
from mailroom.letters import lifecycle, services
from mailroom.letters.models import Letter

prefix = "/letters"
router = Router(tags=["Letters"])


class EventOut(Schema):
    at: datetime
    state: str
    message: str
    source: str = Field(description="mailroom, provider or user.")


class LetterOut(Schema):
    id: int
    company_id: int
    record_type: str = Field(description="e.g. invoicing.invoice")
    record_id: int
    partner_id: int | None
    address_lines: list[str] = Field(description="The address exactly as printed.")
    address_country: str
    state: str = Field(description="draft, queued, submitted, printed, dispatched, "
                                   "delivered, returned, error or cancelled.")
    error_code: str
    error_message: str
    error_action: str = Field(description="What to do about the error, in plain words.")
    provider: str
    provider_ref: str
    tracking_number: str
    postage: str
    color: bool
    duplex: bool
    cover_page: bool
    paper: str
    pages: int
    sheets: int
    price: Decimal | None
    currency: str
    pdf_url: str = Field(description="The exact PDF posted (signed-in users of the company).")
    created_at: datetime
    submitted_at: datetime | None
    events: list[EventOut]


LetterList = list_schema("LetterList", LetterOut)


class LetterIn(Schema):
    idempotency_key: str | None = Field(
        None, max_length=200,
        description="Sending the same key again returns the letter already made (also as the "
                    "Idempotency-Key header).")
    record_type: str = Field(description="A registered record type, e.g. invoicing.invoice.")
    record_id: int = Field(ge=1)
    partner_id: int | None = Field(None, description="Default: the record's customer.")
    postage: Letter.Postage = Letter.Postage.STANDARD
    color: bool = False
    duplex: bool = True
    cover_page: bool = False


class LetterFilters(Page):
    state: str | None = None
    record_type: str | None = None
    record_id: int | None = Field(None, ge=1)


def letter_out(letter: Letter) -> dict:

    return {
        "id": letter.pk, "company_id": letter.company_id, "record_type": letter.record_type,
        "record_id": letter.object_id, "partner_id": letter.partner_id,
        "address_lines": letter.address_lines, "address_country": letter.address_country,
        "state": letter.state, "error_code": letter.error_code,
        "error_message": letter.error_message, "error_action": letter.error_action,
        "provider": letter.provider.name, "provider_ref": letter.provider_ref,
        "tracking_number": letter.tracking_number, "postage": letter.postage,
        "color": letter.color, "duplex": letter.duplex, "cover_page": letter.cover_page,
        "paper": letter.paper, "pages": letter.pages, "sheets": letter.sheets,
        "price": letter.price, "currency": letter.currency,
        "pdf_url": reverse("letters:letter_pdf", args=[letter.pk]),
        "created_at": letter.created_at, "submitted_at": letter.submitted_at,
        "events": [{"at": e.at, "state": e.state, "message": e.message, "source": e.source}
                   for e in letter.events.all()],
    }


def _letters(user):
    require_perm(user, Letter, "view")
    return (Letter.objects.for_user(user).select_related("provider", "content_type")
            .prefetch_related("events"))


def _letter(user, pk: int) -> Letter:
    letter = _letters(user).filter(pk=pk).first()
    if letter is None:
        raise ApiError(404, "No such letter.")
    return letter


@router.get("", response={200: LetterList, **ERRORS}, operation_id="letters_list",
            summary="Your companies' letters, newest first")
def list_letters(request, filters: Query[LetterFilters]):
    queryset = _letters(actor(request))
    if filters.state:
        queryset = queryset.filter(state=filters.state)
    if filters.record_type:
        app_label, _, model = filters.record_type.partition(".")
        queryset = queryset.filter(content_type__app_label=app_label,
                                   content_type__model=model)
    if filters.record_id:
        queryset = queryset.filter(object_id=filters.record_id)
    return page(queryset, filters.limit, filters.offset, letter_out)


@router.get("/{id}", response={200: LetterOut, **ERRORS}, operation_id="letters_get",
            summary="A letter with its timeline")
def get_letter(request, id: int = row_id()):
    return letter_out(_letter(actor(request), id))


@router.post("", response={201: LetterOut, 200: LetterOut, **ERRORS},
             operation_id="letters_create",
             summary="Send a record by post (queued; the worker hands it to the provider)",
             description="201 with the new letter; 200 with the first one when the "
                         "idempotency key was already used. A missing address answers 422 "
                         "naming the field.")
def create_letter(request, data: LetterIn,
                  idempotency_header: str | None = Header(None, alias="Idempotency-Key",
                                                          max_length=200)):
    user = actor(request) or AnonymousUser()
    key = idempotency_key_from(data.idempotency_key, idempotency_header)
    letter_key = uuid.uuid5(uuid.NAMESPACE_URL, f"mailroom:letters:{user.pk}:{key}") \
        if key else None
    if letter_key is not None:
        known = _letters(user).filter(idempotency_key=letter_key).first()
        if known is not None:
            return 200, letter_out(known)
    try:
        record_type = record_types.get(data.record_type)
    except LookupError:
        raise field_error("record_type", f"Unknown record type {data.record_type!r}.") from None
    record = record_type.model.objects.for_user(user).filter(pk=data.record_id).first()
    if record is None:
        raise field_error("record_id", "No such record that you can see.")
    partner = None
    if data.partner_id is not None:
        partner = Partner.objects.for_user(user).filter(pk=data.partner_id).first()
        if partner is None:
            raise field_error("partner_id", "No such contact that you can see.")
    options = services.LetterOptions(color=data.color, duplex=data.duplex,
                                     cover_page=data.cover_page, postage=data.postage)
    letter = services.send_by_post(record, actor=user, partner=partner, options=options,
                                   idempotency_key=letter_key)
    return 201, letter_out(_letter(user, letter.pk))


@router.post("/{id}/cancel", response={200: LetterOut, **ERRORS},
             operation_id="letters_cancel", summary="Cancel while the provider allows it")
def cancel_letter(request, id: int = row_id()):
    user = actor(request)
    lifecycle.cancel(_letter(user, id), actor=user)
    return letter_out(_letter(user, id))


@router.post("/{id}/retry", response={200: LetterOut, **ERRORS},
             operation_id="letters_retry", summary="Queue a letter in error again")
def retry_letter(request, id: int = row_id()):
    user = actor(request)
    lifecycle.retry(_letter(user, id), actor=user)
    return letter_out(_letter(user, id))
