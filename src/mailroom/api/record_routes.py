"""CRUD and chatter endpoints for every record type in `mailroom.core.record_types`
(the registry): the API side of record types, as `api.crud` is for other company-owned models.

Built from the registry when the URLconf loads, so a type an app registers in its
AppConfig.ready() gets /api/v1/<slug>/ without touching this package.

No `from __future__ import annotations` here: ninja reads the view functions' annotations,
which name schemas built at runtime, so they must be real objects.
"""

import logging
import re
from datetime import datetime
from typing import Literal

from django.db.models import Q
from ninja import Path, Query, Router, Schema, Status
from ninja.responses import codes_4xx
from pydantic import Field

from mailroom.api import fields as F
from mailroom.api import writing
from mailroom.api.auth import actor, require_administrator, require_perm
from mailroom.api.crud import Page
from mailroom.api.errors import ErrorOut
from mailroom.api.specs import RecordSpec, StrictIn, spec_for
from mailroom.chatter import services as chatter
from mailroom.chatter.models import MailThread, Message
from mailroom.core import record_types
from mailroom.lib.html import html_to_text

log = logging.getLogger(__name__)


class TrackingOut(Schema):
    field: str
    field_label: str
    old_value: str
    new_value: str


class MessageAttachmentOut(Schema):
    id: int
    name: str
    mimetype: str
    size: int


class MessageOut(Schema):
    id: int
    message_type: str
    direction: str
    subject: str
    body_html: str
    body_text: str
    author_name: str
    author_user_id: int | None
    author_partner_id: int | None
    email_from: str
    date: datetime
    parent_id: int | None
    message_id: str
    tracking: list[TrackingOut]
    attachments: list[MessageAttachmentOut]


class MessageList(Schema):
    count: int
    limit: int
    offset: int
    items: list[MessageOut]


class MessageIn(StrictIn):
    body: F.Text = Field(max_length=1_000_000, description="HTML (sanitized) or plain text.")
    message_type: Literal["comment", "note"] = "comment"
    subject: F.Line = Field("", max_length=998)


_HTML = re.compile(r"<(?:/?[a-zA-Z][\w-]*|!--)[^>]*>")


def message_out(message: Message) -> dict:
    return {
        "id": message.pk,
        "message_type": message.message_type,
        "direction": message.direction,
        "subject": message.subject,
        "body_html": message.body_html,
        "body_text": html_to_text(message.body_html),
        "author_name": message.author_name,
        "author_user_id": message.author_user_id,
        "author_partner_id": message.author_partner_id,
        "email_from": message.email_from,
        "date": message.date,
        "parent_id": message.parent_id,
        "message_id": message.message_id,
        "tracking": [
            {"field": t.field, "field_label": t.field_label, "old_value": t.old_value,
             "new_value": t.new_value}
            for t in message.tracking.all()
        ],
        "attachments": [
            {"id": a.pk, "name": a.name, "mimetype": a.mimetype, "size": a.size}
            for a in message.attachments.all()
        ],
    }


def record_id():
    return Path(..., ge=1, le=F.MAX_ID, description="The record's id.")


def add_record_routes(router: Router, spec: RecordSpec) -> None:
    model = spec.model
    Out, ListOut, CreateIn, PatchIn, Filters = (  # noqa: N806 - schema classes
        spec.out, spec.list_out, spec.create_in, spec.patch_in, spec.filters)
    slug = spec.slug
    op = slug.replace("-", "_")
    tags = [spec.record_type.label_plural]
    label = spec.label.lower()
    plural = spec.record_type.label_plural.lower()
    related = [f.name for f in spec.read_fields.values() if f.is_relation]

    def list_records(request, filters: Query[Filters]):
        user = actor(request)
        require_perm(user, model, "view")
        wanted = filters.model_dump(exclude_none=True)
        limit, offset = wanted.pop("limit"), wanted.pop("offset")
        queryset = writing.visible(model, user)
        q = wanted.pop("q", "").strip()
        if q and spec.search_fields:
            condition = Q()
            for name in spec.search_fields:
                condition |= Q(**{f"{name}__icontains": q})
            queryset = queryset.filter(condition)
        if "company_id" in wanted:
            queryset = queryset.filter(company_id=wanted.pop("company_id"))
        for name, value in wanted.items():
            queryset = queryset.filter(**{spec.filter_fields[name].attname: value})
        ordering = [*(model._meta.ordering or []), "pk"]
        queryset = queryset.select_related(*related).order_by(*ordering)
        queryset = queryset.prefetch_related(*writing.line_prefetch(spec))
        count = queryset.count()
        page = queryset[offset:offset + limit]
        return {"count": count, "limit": limit, "offset": offset,
                "items": [writing.record_out(spec, r) for r in page]}

    def get_record(request, id: int = record_id()):
        user = actor(request)
        require_perm(user, model, "view")
        return writing.record_out(spec, writing.get_visible(model, user, id))

    def create_record(request, payload: CreateIn):
        user = actor(request)
        require_perm(user, model, "add")
        record = writing.create(spec, user, payload)
        return Status(201, writing.record_out(spec, writing.get_visible(model, user, record.pk)))

    def update_record(request, payload: PatchIn, id: int = record_id()):
        user = actor(request)
        record = writing.get_visible(model, user, id)
        require_perm(user, model, "change")
        writing.update(spec, user, record, payload)
        return writing.record_out(spec, writing.get_visible(model, user, id))

    def delete_record(request, id: int = record_id()):
        user = actor(request)
        record = writing.get_visible(model, user, id)
        require_administrator(user)
        writing.delete(spec, user, record)
        return Status(204, None)

    errors = {codes_4xx: ErrorOut}
    router.add_api_operation(
        f"/{slug}", ["GET"], list_records, response={200: ListOut, **errors}, tags=tags,
        operation_id=f"{op}_list", summary=f"List {plural}", url_name=f"{slug}-list",
        description=f"Search with `q` ({', '.join(spec.search_fields) or 'no text fields'}); "
                    f"filter by {', '.join(['company_id', *spec.filter_fields]) }.")
    router.add_api_operation(
        f"/{slug}", ["POST"], create_record, response={201: Out, **errors}, tags=tags,
        operation_id=f"{op}_create", summary=f"Create a {label}", url_name=f"{slug}-create",
        description="`company_id` defaults to your current company.")
    router.add_api_operation(
        f"/{slug}/{{id}}", ["GET"], get_record, response={200: Out, **errors}, tags=tags,
        operation_id=f"{op}_get", summary=f"Get a {label}", url_name=f"{slug}-detail")
    router.add_api_operation(
        f"/{slug}/{{id}}", ["PATCH"], update_record, response={200: Out, **errors}, tags=tags,
        operation_id=f"{op}_update", summary=f"Change a {label}", url_name=f"{slug}-update")
    router.add_api_operation(
        f"/{slug}/{{id}}", ["DELETE"], delete_record, response={204: None, **errors},
        tags=tags, operation_id=f"{op}_delete", summary=f"Delete a {label} (Administrators)",
        url_name=f"{slug}-delete")
    if issubclass(model, MailThread):
        add_message_routes(router, spec)


def add_message_routes(router: Router, spec: RecordSpec) -> None:
    model = spec.model
    slug = spec.slug
    op = slug.replace("-", "_")
    tags = [spec.record_type.label_plural]
    label = spec.label.lower()

    def list_messages(request, page: Query[Page], id: int = record_id()):
        user = actor(request)
        require_perm(user, model, "view")
        record = writing.get_visible(model, user, id)
        queryset = chatter.thread_queryset(Message, record)
        count = queryset.count()
        items = queryset.prefetch_related("tracking", "attachments")[
            page.offset:page.offset + page.limit]
        return {"count": count, "limit": page.limit, "offset": page.offset,
                "items": [message_out(m) for m in items]}

    def post_message(request, payload: MessageIn, id: int = record_id()):
        user = actor(request)
        record = writing.get_visible(model, user, id)
        require_perm(user, Message, "add")
        kind = "html" if _HTML.search(payload.body) else "text"
        message = chatter.post_message(
            record, actor=user, subject=payload.subject, message_type=payload.message_type,
            **{f"body_{kind}": payload.body})
        return Status(201, message_out(
            Message.objects.prefetch_related("tracking", "attachments").get(pk=message.pk)))

    errors = {codes_4xx: ErrorOut}
    router.add_api_operation(
        f"/{slug}/{{id}}/messages", ["GET"], list_messages,
        response={200: MessageList, **errors}, tags=tags, operation_id=f"{op}_messages",
        summary=f"A {label}'s chatter, newest first", url_name=f"{slug}-messages")
    router.add_api_operation(
        f"/{slug}/{{id}}/messages", ["POST"], post_message,
        response={201: MessageOut, **errors}, tags=tags, operation_id=f"{op}_post_message",
        summary=f"Post a message or log a note on a {label}",
        description="`body` is HTML (sanitized) when it contains tags, else plain text. "
                    "Comments notify followers; notes stay internal.",
        url_name=f"{slug}-post-message")


def api_record_types() -> list[record_types.RecordType]:
    """Registered types the API can serve: company-owned, one slug each. Partners first."""
    chosen: dict[str, record_types.RecordType] = {}
    ordered = sorted(record_types.all_types(),
                     key=lambda rt: (rt.key != "contacts.partner", rt.key))
    for record_type in ordered:
        model = record_type.model
        if not any(f.name == "company" for f in model._meta.concrete_fields):
            log.warning("API: %s has no company column; not exposed", record_type.key)
            continue
        if record_type.slug in chosen:
            log.warning("API: %s and %s share the slug %r; only the first is exposed",
                        chosen[record_type.slug].key, record_type.key, record_type.slug)
            continue
        chosen[record_type.slug] = record_type
    return list(chosen.values())


def build_router() -> Router:
    router = Router()
    for record_type in api_record_types():
        add_record_routes(router, spec_for(record_type))
    return router
