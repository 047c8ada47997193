"""Email templates through the API (/api/v1/templates): list, read, create, change, preview
for a record, send for a record with an idempotency key.

Create and change go through `services.save_template`, like the editor: every placeholder is
checked against the record type's fields, and an unknown one answers 422 naming it with the
nearest valid names.

Preview and send call the same `rendering`/`services` functions as the composer, so what the
API previews is what the composer would send. A render error answers 422 naming the
template's field and line, and no email is created. Templates and records of another company
answer 404, exactly like ones that do not exist.

No `from __future__ import annotations` here: ninja reads the view functions' annotations.
"""

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from django.core.exceptions import ValidationError
from django.utils import timezone
from ninja import Header, Path, Query, Router, Schema, Status
from ninja.responses import codes_4xx
from pydantic import AfterValidator, Field

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
from mailroom.api.specs import StrictIn
from mailroom.api.writing import company_for_create
from mailroom.contacts.models import Partner
from mailroom.core import record_types
from mailroom.core.models import LANGUAGE_CHOICES
from mailroom.lib.sandbox import TemplateError
from mailroom.outgoing.api import EmailOut, email_out, get_mail
from mailroom.outgoing.models import OutgoingMail
from mailroom.templating import rendering, services
from mailroom.templating.models import EmailTemplate, TemplateTranslation

prefix = "/templates"
router = Router(tags=["Templates"])

CTX_MAX_BYTES = 64 * 1024
LANG_PATTERN = r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})?$"


def check_ctx(value: dict[str, Any]) -> dict[str, Any]:
    """Plain JSON only (it reaches the sandbox as `ctx`), and small."""
    F.check_json(value)
    if len(json.dumps(value, ensure_ascii=False).encode()) > CTX_MAX_BYTES:
        raise ValueError(f"ctx is larger than {CTX_MAX_BYTES // 1024} KB.")
    return value


Ctx = Annotated[dict[str, Any], AfterValidator(check_ctx)]


# --- schemas ---------------------------------------------------------------------------------

class TemplateSummary(Schema):
    id: int
    name: str
    description: str
    record_type: str
    company_id: int | None = Field(description="null: shared by every company.")
    shared: bool
    languages: list[str] = Field(description="The languages the subject and body exist in.")
    default_for: str = Field(description="The action it is the default template of, if any.")
    active: bool
    updated_at: datetime


class TranslationOut(Schema):
    lang: str
    subject: str
    body_html: str


class TemplateOut(TemplateSummary):
    subject: str
    body_html: str
    email_from: str
    email_to: str
    partner_to: str
    email_cc: str
    reply_to: str
    lang: str
    text_lang: str = Field(description="The language subject and body are written in; empty: "
                                       "the company's.")
    scheduled_send: str
    layout: str
    attach_document: bool
    attachments: list[str]
    translations: list[TranslationOut]


class TemplateList(Schema):
    count: int
    items: list[TemplateSummary]


class TemplateFilters(Schema):
    record_type: F.Line | None = F.optional(
        max_length=64, description="A record type key, e.g. 'sales.quotation'.")
    active: bool | None = F.optional(description="Default: active templates only.")


class PreviewIn(StrictIn):
    record_id: F.Id
    lang: str | None = Field(None, max_length=20, pattern=LANG_PATTERN,
                             description="Default: the template's language expression.")
    ctx: Ctx = Field(default_factory=dict, description="Extra data, read as {{ ctx.… }}.")


class SendIn(PreviewIn):
    idempotency_key: F.Line | None = Field(
        None, min_length=1, max_length=200,
        description="Or the Idempotency-Key header: a retried call returns the first mail.")


class PreviewRecipientOut(Schema):
    name: str
    address: str
    partner_id: int | None


class FileOut(Schema):
    name: str
    mimetype: str
    size: int


class PreviewOut(Schema):
    subject: str
    body: str = Field(description="The rendered body, before the layout.")
    html: str = Field(description="The final HTML: layout, inlined CSS, absolute links.")
    text: str
    email_from: str
    to: list[PreviewRecipientOut]
    cc: list[str]
    reply_to: str
    lang: str
    lang_missing: bool = Field(description="No translation for the wanted language: the "
                                           "template's own text was used.")
    wanted_lang: str = Field(description="The language asked for, when the text is in another "
                                         "one (lang_missing); dates and amounts follow lang.")
    scheduled_at: datetime | None
    attachments: list[FileOut]


Language = Literal[tuple(code for code, _ in LANGUAGE_CHOICES)]


class TranslationIn(StrictIn):
    lang: Language
    subject: F.Line = Field("", max_length=998)
    body_html: F.Text = ""


class TemplateChange(StrictIn):
    """Every field of a template; on PATCH, only the ones sent change."""

    name: F.Line | None = F.optional(min_length=1, max_length=200)
    description: F.Text | None = F.optional()
    subject: F.Line | None = F.optional(max_length=998)
    body_html: F.Text | None = F.optional()
    email_from: F.Line | None = F.optional(max_length=320)
    email_to: F.Text | None = F.optional()
    partner_to: F.Line | None = F.optional(max_length=500)
    email_cc: F.Text | None = F.optional()
    reply_to: F.Line | None = F.optional(max_length=320)
    lang: F.Line | None = F.optional(max_length=200)
    text_lang: Language | Literal[""] | None = F.optional()
    scheduled_send: F.Line | None = F.optional(max_length=200)
    layout: Literal[tuple(EmailTemplate.Layout.values)] | None = F.optional()
    attach_document: bool | None = F.optional()
    auto_delete: bool | None = F.optional()
    active: bool | None = F.optional()
    translations: list[TranslationIn] | None = F.optional(
        max_length=len(LANGUAGE_CHOICES), description="Replaces all translations.")


class TemplateIn(TemplateChange):
    name: F.Line = Field(..., min_length=1, max_length=200)
    record_type: F.Line = Field(..., max_length=64, description="e.g. 'sales.quotation'.")
    company_id: F.Id | None = Field(None, description="Default: your current company.")
    shared: bool = Field(False, description="Shared by every company (Template Editors).")


# --- helpers ---------------------------------------------------------------------------------

def _languages(template: EmailTemplate, user) -> list[str]:
    company = template.company or getattr(user, "current_company", None)
    written_in = template.text_lang or getattr(company, "language", "")
    own = [written_in] if written_in else []
    return own + sorted({t.lang for t in template.translations.all()} - set(own))


def summary_out(template: EmailTemplate, user) -> dict:
    return {
        "id": template.pk, "name": template.name, "description": template.description,
        "record_type": template.record_type, "company_id": template.company_id,
        "shared": template.company_id is None, "languages": _languages(template, user),
        "default_for": template.default_for, "active": template.active,
        "updated_at": template.updated_at,
    }


def template_out(template: EmailTemplate, user) -> dict:
    return {
        **summary_out(template, user),
        **{name: getattr(template, name) for name in (
            "subject", "body_html", "email_from", "email_to", "partner_to", "email_cc",
            "reply_to", "lang", "text_lang", "scheduled_send", "layout", "attach_document")},
        "attachments": [a.name for a in template.attachments.all()],
        "translations": [{"lang": t.lang, "subject": t.subject, "body_html": t.body_html}
                         for t in template.translations.all()],
    }


def visible_templates(user):
    require_perm(user, EmailTemplate, "view")
    return EmailTemplate.objects.for_user(user).select_related("company").prefetch_related(
        "translations")


def get_template(user, pk: int) -> EmailTemplate:
    template = visible_templates(user).filter(pk=pk).first()
    if template is None:
        raise ApiError(404, "No such template.")
    return template


def get_record(user, template: EmailTemplate, record_id: int):
    """The template's kind of record, if the user may see it and the template may be used
    for it; another company's record is a 404."""
    try:
        model = record_types.get(template.record_type).model
    except LookupError:
        raise field_error("record_id", "The template applies to an unknown record type.") \
            from None
    require_perm(user, model, "view")
    record = writing.visible(model, user).filter(pk=record_id).first()
    if record is None:
        raise ApiError(404, "No such record.", "record_id")
    if template.company_id not in (None, record.company_id):
        raise field_error("record_id", "The record belongs to another company than the "
                                       "template.")
    return record


def template_error(exc: TemplateError) -> FieldErrors:
    """422 naming the template's field: {"field": "body", "message": "Template 'X', body,
    line 3: …"}."""
    return FieldErrors([(getattr(exc, "field", None) or None, str(exc))])


def _recipient(entry) -> dict:
    if isinstance(entry, Partner):
        return {"name": entry.name, "address": entry.email, "partner_id": entry.pk}
    return {"name": "", "address": str(entry), "partner_id": None}


# --- endpoints -------------------------------------------------------------------------------

ERRORS = {codes_4xx: ErrorOut}
TEMPLATE_ID = Path(..., ge=1, le=F.MAX_ID, description="The template's id.")


@router.get("", response={200: TemplateList, **ERRORS}, operation_id="templates_list",
            summary="List the templates you may use",
            description="Your companies' templates and the shared ones, by record type and "
                        "name.")
def list_templates(request, filters: Query[TemplateFilters]):
    user = actor(request)
    queryset = visible_templates(user)
    if filters.record_type:
        try:
            record_types.get(filters.record_type)
        except LookupError:
            raise field_error("record_type", "Unknown record type.") from None
        queryset = queryset.filter(record_type=filters.record_type)
    queryset = queryset.filter(active=True if filters.active is None else filters.active)
    items = [summary_out(t, user) for t in queryset.order_by("record_type", "name", "pk")]
    return {"count": len(items), "items": items}


@router.get("/{id}", response={200: TemplateOut, **ERRORS}, operation_id="templates_get",
            summary="A template: its fields, translations and attachments")
def get_template_view(request, id: int = TEMPLATE_ID):
    user = actor(request)
    template = get_template(user, id)
    return template_out(template, user)


@router.post("/{id}/preview", response={200: PreviewOut, **ERRORS},
             operation_id="templates_preview",
             summary="Render the template for a record (nothing is sent)")
def preview_template(request, payload: PreviewIn, id: int = TEMPLATE_ID):
    user = actor(request)
    template = get_template(user, id)
    record = get_record(user, template, payload.record_id)
    try:
        rendered = rendering.render_template(template, record, user=user, ctx=payload.ctx,
                                             lang=payload.lang)
    except TemplateError as exc:
        raise template_error(exc) from None
    return {
        "subject": rendered.subject, "body": rendered.body, "html": rendered.html,
        "text": rendered.text, "email_from": rendered.email_from,
        "to": [_recipient(r) for r in rendered.to], "cc": rendered.cc,
        "reply_to": rendered.reply_to, "lang": rendered.lang,
        "lang_missing": rendered.lang_missing, "wanted_lang": rendered.wanted_lang,
        "scheduled_at": rendered.scheduled_at,
        "attachments": [{"name": f.name, "mimetype": f.mimetype, "size": len(f.content)}
                        for f in rendered.attachments],
    }


@router.post("/{id}/send", response={201: EmailOut, 200: EmailOut, **ERRORS},
             operation_id="templates_send",
             summary="Send the template for a record",
             description="Answers 201 with the queued email (as GET /emails/{id}), or 200 "
                         "with the existing one when the idempotency key was already used in "
                         "the record's company. The email is logged on the record's chatter.")
def send_template(request, payload: SendIn, id: int = TEMPLATE_ID,
                  idempotency_header: str | None = Header(None, alias="Idempotency-Key",
                                                           max_length=200)):
    user = actor(request)
    require_perm(user, OutgoingMail, "view")
    template = get_template(user, id)
    key = idempotency_key_from(payload.idempotency_key, idempotency_header)
    record = get_record(user, template, payload.record_id)
    if key:
        existing = OutgoingMail.objects.filter(company_id=record.company_id,
                                               idempotency_key=key).first()
        if existing is not None:
            return Status(200, email_out(get_mail(user, existing.pk)))
    if not template.active:
        raise field_error("id", f"“{template.name}” is archived.")
    now = timezone.now()
    try:
        mail = services.send_template(record, template, actor=user, ctx=payload.ctx,
                                      idempotency_key=key, lang=payload.lang)
    except TemplateError as exc:
        raise template_error(exc) from None
    except ValidationError as exc:
        raise FieldErrors(django_errors(exc)) from None
    status = 201 if mail.created_at >= now else 200
    return Status(status, email_out(get_mail(user, mail.pk)))


def _save(user, template: EmailTemplate, payload: TemplateChange) -> dict:
    """Apply the fields sent and save through the service: bad placeholders are a 422."""
    data = payload.dict(exclude_unset=True, exclude={"company_id", "shared", "translations"})
    for name, value in data.items():
        if value is not None:
            setattr(template, name, value)
    translations = None
    if payload.translations is not None:
        translations = [TemplateTranslation(lang=t.lang, subject=t.subject,
                                            body_html=t.body_html) for t in payload.translations]
        if len({t.lang for t in translations}) != len(translations):
            raise field_error("translations", "Each language can have only one translation.")
    try:
        services.save_template(template, actor=user, translations=translations)
    except ValidationError as exc:
        raise FieldErrors(django_errors(exc)) from None
    return template_out(EmailTemplate.objects.get(pk=template.pk), user)


@router.post("", response={201: TemplateOut, **ERRORS}, operation_id="templates_create",
             summary="Create a template",
             description="Every placeholder is checked against the record type's fields: an "
                         "unknown one (object.partner.nam) answers 422 naming the field, the "
                         "line and the nearest valid names.")
def create_template(request, payload: TemplateIn):
    user = actor(request)
    try:
        record_types.get(payload.record_type)
    except LookupError:
        raise field_error("record_type", "Unknown record type.") from None
    company_id = None if payload.shared else company_for_create(user, payload.company_id)
    template = EmailTemplate(company_id=company_id, record_type=payload.record_type)
    return Status(201, _save(user, template, payload))


@router.patch("/{id}", response={200: TemplateOut, **ERRORS}, operation_id="templates_update",
              summary="Change a template",
              description="Only the fields sent change; placeholders are checked as on "
                          "create.")
def update_template(request, payload: TemplateChange, id: int = TEMPLATE_ID):
    user = actor(request)
    template = get_template(user, id)
    return _save(user, template, payload)
