"""Where inbound mail may go, through the API: alias domains (/api/v1/alias-domains), aliases
(/api/v1/aliases) and allowed senders (/api/v1/allowed-senders).

Every write goes through `routing.services` (permission check, full_clean, audit row, cache
reset); this module only turns JSON into model fields and back. Rows of other companies
answer 404 exactly like rows that do not exist; a reference to one (a domain, an alias, a
force-thread record) is a 422 naming the field, worded the same as for a missing row.

No `from __future__ import annotations` here: ninja reads the view functions' annotations.
"""

from datetime import datetime
from typing import Annotated, Any, Literal

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models
from ninja import Path, Query, Router, Schema, Status
from ninja.responses import codes_4xx
from pydantic import AfterValidator, Field

from mailroom.api import fields as F
from mailroom.api import writing
from mailroom.api.auth import actor, require_perm
from mailroom.api.errors import ApiError, ErrorOut, FieldErrors, django_errors, field_error
from mailroom.api.specs import StrictIn
from mailroom.core import records
from mailroom.routing import services
from mailroom.routing.models import Alias, AliasDomain, AllowedSender

prefix = ""
router = Router(tags=["Routing"])

ERRORS = {codes_4xx: ErrorOut}
ROW_ID = Path(..., ge=1, le=F.MAX_ID, description="The row's id.")
MAX_DEFAULTS = 50
ContactPolicyName = Literal[tuple(Alias.ContactPolicy.values)]
LocalPart = Annotated[F.Line, Field(min_length=1, max_length=64,
                                    description="Lowercase letters, digits, '.', '-', '_'.")]
Sequence = Annotated[int, Field(ge=0, le=2**31 - 1)]


def check_defaults(value: dict[str, Any]) -> dict[str, Any]:
    """Field name → a plain JSON scalar; the alias service checks names and values against
    the record type."""
    if len(value) > MAX_DEFAULTS:
        raise ValueError(f"At most {MAX_DEFAULTS} default values.")
    for name, item in value.items():
        F.check_line(name)
        if not name or len(name) > 100:
            raise ValueError("Default names are field names (1 to 100 characters).")
        if isinstance(item, (dict, list)):
            raise ValueError(f"{name}: give a plain value (text, number, true/false or null).")
        if isinstance(item, str):
            F.check_text(item)
            if len(item) > 10_000:
                raise ValueError(f"{name}: at most 10,000 characters.")
        if isinstance(item, int) and not isinstance(item, bool) and abs(item) > F.MAX_ID:
            raise ValueError(f"{name}: the number is out of range.")
    return value


Defaults = Annotated[dict[str, Any], AfterValidator(check_defaults)]


# --- schemas -------------------------------------------------------------------------------

class RecordLink(Schema):
    record_type: str = Field(description="A record type key, e.g. 'helpdesk.ticket'.")
    id: int


class RecordLinkIn(StrictIn):
    record_type: F.Line = Field(..., max_length=100,
                                description="A record type key, e.g. 'helpdesk.ticket'.")
    id: F.Id


class AliasDomainIn(StrictIn):
    company_id: F.Id | None = F.optional(description="Defaults to your current company.")
    name: F.Line = Field(..., min_length=1, max_length=253, description="e.g. 'example.com'.")
    bounce_alias: LocalPart = F.optional()
    catchall_alias: LocalPart = F.optional()
    default_from: LocalPart = F.optional()
    accept_unknown: bool = F.optional()
    allowlist_only: bool = F.optional()
    sequence: Sequence = F.optional()


class AliasDomainPatch(StrictIn):
    name: F.Line = F.optional(min_length=1, max_length=253)
    bounce_alias: LocalPart = F.optional()
    catchall_alias: LocalPart = F.optional()
    default_from: LocalPart = F.optional()
    accept_unknown: bool = F.optional()
    allowlist_only: bool = F.optional()
    sequence: Sequence = F.optional()


class AliasDomainOut(Schema):
    id: int
    company_id: int
    name: str
    bounce_alias: str
    catchall_alias: str
    default_from: str
    bounce_email: str
    catchall_email: str
    default_from_email: str
    accept_unknown: bool
    allowlist_only: bool
    sequence: int
    created_at: datetime


class AliasIn(StrictIn):
    domain_id: F.Id = Field(..., description="The alias domain (its company is the alias's).")
    local_part: LocalPart
    record_type: F.Line = Field(..., min_length=1, max_length=100,
                                description="Mail creates records of this type, e.g. "
                                            "'crm.lead'.")
    defaults: Defaults = F.optional(description='Field values for new records, e.g. '
                                                '{"priority": "high"}.')
    thread: RecordLinkIn | None = F.optional(
        description="Force thread: post everything on this record instead of creating new "
                    "ones (null: off).")
    contact_policy: ContactPolicyName = F.optional()
    allowlist_only: bool = F.optional()
    bounce_message: F.Text = F.optional(max_length=10_000)
    active: bool = F.optional()


class AliasPatch(StrictIn):
    domain_id: F.Id = F.optional()
    local_part: LocalPart = F.optional()
    record_type: F.Line = F.optional(min_length=1, max_length=100)
    defaults: Defaults = F.optional()
    thread: RecordLinkIn | None = F.optional()
    contact_policy: ContactPolicyName = F.optional()
    allowlist_only: bool = F.optional()
    bounce_message: F.Text = F.optional(max_length=10_000)
    active: bool = F.optional()


class AliasOut(Schema):
    id: int
    company_id: int
    domain_id: int
    local_part: str
    email: str
    record_type: str
    defaults: dict[str, Any]
    thread: RecordLink | None
    parent: RecordLink | None = Field(description="The record the alias belongs to (a "
                                                  "project's own alias), if any.")
    contact_policy: str
    allowlist_only: bool
    bounce_message: str
    status: str
    last_error: str
    active: bool
    created_at: datetime


class AllowedSenderIn(StrictIn):
    company_id: F.Id | None = F.optional(description="Defaults to your current company.")
    pattern: F.Line = Field(..., min_length=1, max_length=254,
                            description="An address (anna@partner.com) or a domain "
                                        "(partner.com).")
    alias_id: F.Id | None = F.optional(description="Only for this alias.")
    alias_domain_id: F.Id | None = F.optional(description="Only for this domain.")
    note: F.Line = F.optional(max_length=200)


class AllowedSenderPatch(StrictIn):
    pattern: F.Line = F.optional(min_length=1, max_length=254)
    alias_id: F.Id | None = F.optional()
    alias_domain_id: F.Id | None = F.optional()
    note: F.Line = F.optional(max_length=200)


class AllowedSenderOut(Schema):
    id: int
    company_id: int
    pattern: str
    is_domain: bool
    alias_id: int | None
    alias_domain_id: int | None
    note: str
    created_at: datetime


class Page(Schema):
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=10_000_000)


class DomainFilters(Page):
    company_id: F.Id | None = F.optional()
    q: F.Text | None = F.optional(max_length=200, description="Search the domain name.")


class AliasFilters(Page):
    company_id: F.Id | None = F.optional()
    domain_id: F.Id | None = F.optional()
    record_type: F.Line | None = F.optional(max_length=100)
    active: bool | None = F.optional()
    q: F.Text | None = F.optional(max_length=200, description="Search the local part.")


class SenderFilters(Page):
    company_id: F.Id | None = F.optional()
    alias_id: F.Id | None = F.optional()
    alias_domain_id: F.Id | None = F.optional()
    q: F.Text | None = F.optional(max_length=200, description="Search the pattern.")


class AliasDomainList(Schema):
    count: int
    limit: int
    offset: int
    items: list[AliasDomainOut]


class AliasList(Schema):
    count: int
    limit: int
    offset: int
    items: list[AliasOut]


class AllowedSenderList(Schema):
    count: int
    limit: int
    offset: int
    items: list[AllowedSenderOut]


# --- output --------------------------------------------------------------------------------

def domain_out(domain: AliasDomain) -> dict:
    return {name: getattr(domain, name) for name in (
        "id", "company_id", "name", "bounce_alias", "catchall_alias", "default_from",
        "bounce_email", "catchall_email", "default_from_email", "accept_unknown",
        "allowlist_only", "sequence", "created_at")}


def _link(content_type_id: int | None, object_id: int | None) -> dict | None:
    if not content_type_id or not object_id:
        return None
    content_type = ContentType.objects.get_for_id(content_type_id)
    return {"record_type": f"{content_type.app_label}.{content_type.model}", "id": object_id}


def alias_out(alias: Alias) -> dict:
    return {
        **{name: getattr(alias, name) for name in (
            "id", "company_id", "domain_id", "local_part", "email", "record_type", "defaults",
            "contact_policy", "allowlist_only", "bounce_message", "status", "last_error",
            "active", "created_at")},
        "thread": _link(alias.thread_content_type_id, alias.thread_object_id),
        "parent": _link(alias.parent_content_type_id, alias.parent_object_id),
    }


def sender_out(sender: AllowedSender) -> dict:
    return {name: getattr(sender, name) for name in (
        "id", "company_id", "pattern", "is_domain", "alias_id", "alias_domain_id", "note",
        "created_at")}


def _page(queryset: models.QuerySet, filters: Page, out) -> dict:
    count = queryset.count()
    rows = queryset[filters.offset:filters.offset + filters.limit]
    return {"count": count, "limit": filters.limit, "offset": filters.offset,
            "items": [out(row) for row in rows]}


# --- helpers -------------------------------------------------------------------------------

def _visible(user, model: type[models.Model]) -> models.QuerySet:
    require_perm(user, model, "view")
    return writing.visible(model, user)


def _get(user, model: type[models.Model], pk: int, what: str) -> models.Model:
    row = _visible(user, model).filter(pk=pk).first()
    if row is None:
        raise ApiError(404, f"No such {what}.")
    return row


def _reference(user, model: type[models.Model], pk: int, company_id: int, field: str):
    """A row the new or changed one points at: visible to the caller and of the same
    company; otherwise one answer for 'missing' and 'someone else's'."""
    row = writing.visible(model, user).filter(pk=pk, company_id=company_id).first()
    if row is None:
        raise field_error(field, f"No {model._meta.verbose_name} with id {pk} in this "
                                 f"company.")
    return row


RENAME = {"domain": "domain_id", "alias": "alias_id", "alias_domain": "alias_domain_id",
          "thread_object_id": "thread", "thread_content_type": "thread"}


def _write(save, row: models.Model, user) -> models.Model:
    try:
        return save(row, actor=user)
    except ValidationError as exc:
        raise FieldErrors(django_errors(exc, RENAME)) from None
    except (TypeError, ValueError, OverflowError):
        # an alias default of the wrong kind for its field (text for a foreign key)
        raise field_error("defaults", "A default value has the wrong type for its field.") \
            from None


def _delete(row: models.Model, user) -> None:
    try:
        services.delete(row, actor=user)
    except ValidationError as exc:
        raise ApiError(409, " ".join(exc.messages)) from None


def _thread(user, link: RecordLinkIn | None, company_id: int) -> tuple:
    """(content type, object id) of a force-thread record, or (None, None)."""
    if link is None:
        return None, None
    try:
        model = records.get(link.record_type).model
    except LookupError:
        raise field_error("thread.record_type", f"Unknown record type {link.record_type!r}.") \
            from None
    record = writing.visible(model, user).filter(pk=link.id, company_id=company_id).first()
    if record is None:
        raise field_error("thread.id", f"No {model._meta.verbose_name} with id {link.id} in "
                                       f"this company.")
    return ContentType.objects.get_for_model(model, for_concrete_model=True), record.pk


# --- alias domains -------------------------------------------------------------------------

@router.get("/alias-domains", response={200: AliasDomainList, **ERRORS},
            operation_id="alias_domains_list", summary="List alias domains")
def list_domains(request, filters: Query[DomainFilters]):
    queryset = _visible(actor(request), AliasDomain)
    if filters.company_id:
        queryset = queryset.filter(company_id=filters.company_id)
    if filters.q:
        queryset = queryset.filter(name__icontains=filters.q.strip())
    return _page(queryset.order_by("sequence", "name", "id"), filters, domain_out)


@router.post("/alias-domains", response={201: AliasDomainOut, **ERRORS},
             operation_id="alias_domains_create",
             summary="Receive mail on a domain (Mail Managers)")
def create_domain(request, payload: AliasDomainIn):
    user = actor(request)
    require_perm(user, AliasDomain, "add")
    data = payload.model_dump(exclude_unset=True)
    domain = AliasDomain(company_id=writing.company_for_create(user, data.pop("company_id",
                                                                              None)))
    for name, value in data.items():
        setattr(domain, name, value)
    _write(services.save_alias_domain, domain, user)
    return Status(201, domain_out(domain))


@router.get("/alias-domains/{id}", response={200: AliasDomainOut, **ERRORS},
            operation_id="alias_domains_get", summary="An alias domain")
def get_domain(request, id: int = ROW_ID):
    return domain_out(_get(actor(request), AliasDomain, id, "alias domain"))


@router.patch("/alias-domains/{id}", response={200: AliasDomainOut, **ERRORS},
              operation_id="alias_domains_update",
              summary="Change an alias domain (Mail Managers)")
def update_domain(request, payload: AliasDomainPatch, id: int = ROW_ID):
    user = actor(request)
    domain = _get(user, AliasDomain, id, "alias domain")
    for name, value in payload.model_dump(exclude_unset=True).items():
        if value is None:
            raise field_error(name, "This field cannot be null.")
        setattr(domain, name, value)
    _write(services.save_alias_domain, domain, user)
    return domain_out(domain)


@router.delete("/alias-domains/{id}", response={204: None, **ERRORS},
               operation_id="alias_domains_delete",
               summary="Stop receiving on a domain (Mail Managers)",
               description="Answers 409 while aliases still use the domain.")
def delete_domain(request, id: int = ROW_ID):
    user = actor(request)
    _delete(_get(user, AliasDomain, id, "alias domain"), user)
    return Status(204, None)


# --- aliases -------------------------------------------------------------------------------

def _apply_alias(user, alias: Alias, data: dict) -> None:
    if "domain_id" in data:
        if data["domain_id"] is None:
            raise field_error("domain_id", "This field cannot be null.")
        alias.domain = _reference(user, AliasDomain, data.pop("domain_id"),
                                  alias.company_id, "domain_id")
    if "thread" in data:
        link = data.pop("thread")
        alias.thread_content_type, alias.thread_object_id = _thread(
            user, RecordLinkIn(**link) if link else None, alias.company_id)
    for name, value in data.items():
        if value is None:
            raise field_error(name, "This field cannot be null.")
        setattr(alias, name, value)


@router.get("/aliases", response={200: AliasList, **ERRORS}, operation_id="aliases_list",
            summary="List aliases")
def list_aliases(request, filters: Query[AliasFilters]):
    queryset = _visible(actor(request), Alias).select_related("domain")
    wanted = filters.model_dump(exclude_none=True)
    for name in ("company_id", "domain_id", "record_type", "active"):
        if name in wanted:
            queryset = queryset.filter(**{name: wanted[name]})
    if filters.q:
        queryset = queryset.filter(local_part__icontains=filters.q.strip())
    return _page(queryset.order_by("domain__name", "local_part", "id"), filters, alias_out)


@router.post("/aliases", response={201: AliasOut, **ERRORS}, operation_id="aliases_create",
             summary="Create an alias (Mail Managers)",
             description="The alias belongs to its domain's company.")
def create_alias(request, payload: AliasIn):
    user = actor(request)
    require_perm(user, Alias, "add")
    data = payload.model_dump(exclude_unset=True)
    # the domain decides the company: any domain of a company the caller belongs to
    domain = writing.visible(AliasDomain, user).filter(pk=data.pop("domain_id")).first()
    if domain is None:
        raise field_error("domain_id", f"No alias domain with id {payload.domain_id}.")
    alias = Alias(company_id=domain.company_id, domain=domain)
    _apply_alias(user, alias, data)
    _write(services.save_alias, alias, user)
    return Status(201, alias_out(alias))


@router.get("/aliases/{id}", response={200: AliasOut, **ERRORS}, operation_id="aliases_get",
            summary="An alias")
def get_alias(request, id: int = ROW_ID):
    return alias_out(_get(actor(request), Alias, id, "alias"))


@router.patch("/aliases/{id}", response={200: AliasOut, **ERRORS},
              operation_id="aliases_update", summary="Change an alias (Mail Managers)",
              description="The domain may only change to another domain of the same company.")
def update_alias(request, payload: AliasPatch, id: int = ROW_ID):
    user = actor(request)
    alias = _get(user, Alias, id, "alias")
    _apply_alias(user, alias, payload.model_dump(exclude_unset=True))
    _write(services.save_alias, alias, user)
    return alias_out(alias)


@router.delete("/aliases/{id}", response={204: None, **ERRORS}, operation_id="aliases_delete",
               summary="Delete an alias (Mail Managers)")
def delete_alias(request, id: int = ROW_ID):
    user = actor(request)
    _delete(_get(user, Alias, id, "alias"), user)
    return Status(204, None)


# --- allowed senders -----------------------------------------------------------------------

def _apply_sender(user, sender: AllowedSender, data: dict) -> None:
    if data.get("alias_id") is not None:
        sender.alias = _reference(user, Alias, data["alias_id"], sender.company_id, "alias_id")
    elif "alias_id" in data:
        sender.alias = None
    if data.get("alias_domain_id") is not None:
        sender.alias_domain = _reference(user, AliasDomain, data["alias_domain_id"],
                                         sender.company_id, "alias_domain_id")
    elif "alias_domain_id" in data:
        sender.alias_domain = None
    for name in ("pattern", "note"):
        if name in data:
            if data[name] is None:
                raise field_error(name, "This field cannot be null.")
            setattr(sender, name, data[name])


@router.get("/allowed-senders", response={200: AllowedSenderList, **ERRORS},
            operation_id="allowed_senders_list",
            summary="List allowed senders (Mail Managers)")
def list_senders(request, filters: Query[SenderFilters]):
    queryset = _visible(actor(request), AllowedSender)
    wanted = filters.model_dump(exclude_none=True)
    for name in ("company_id", "alias_id", "alias_domain_id"):
        if name in wanted:
            queryset = queryset.filter(**{name: wanted[name]})
    if filters.q:
        queryset = queryset.filter(pattern__icontains=filters.q.strip())
    return _page(queryset.order_by("pattern", "id"), filters, sender_out)


@router.post("/allowed-senders", response={201: AllowedSenderOut, **ERRORS},
             operation_id="allowed_senders_create",
             summary="Allow a sender (Mail Managers)",
             description="For one alias, one domain, or (neither) the whole company.")
def create_sender(request, payload: AllowedSenderIn):
    user = actor(request)
    require_perm(user, AllowedSender, "add")
    data = payload.model_dump(exclude_unset=True)
    sender = AllowedSender(company_id=writing.company_for_create(user, data.pop("company_id",
                                                                                None)))
    _apply_sender(user, sender, data)
    _write(services.save_allowed_sender, sender, user)
    return Status(201, sender_out(sender))


@router.get("/allowed-senders/{id}", response={200: AllowedSenderOut, **ERRORS},
            operation_id="allowed_senders_get", summary="An allowed sender (Mail Managers)")
def get_sender(request, id: int = ROW_ID):
    return sender_out(_get(actor(request), AllowedSender, id, "allowed sender"))


@router.patch("/allowed-senders/{id}", response={200: AllowedSenderOut, **ERRORS},
              operation_id="allowed_senders_update",
              summary="Change an allowed sender (Mail Managers)")
def update_sender(request, payload: AllowedSenderPatch, id: int = ROW_ID):
    user = actor(request)
    sender = _get(user, AllowedSender, id, "allowed sender")
    _apply_sender(user, sender, payload.model_dump(exclude_unset=True))
    _write(services.save_allowed_sender, sender, user)
    return sender_out(sender)


@router.delete("/allowed-senders/{id}", response={204: None, **ERRORS},
               operation_id="allowed_senders_delete",
               summary="Remove an allowed sender (Mail Managers)")
def delete_sender(request, id: int = ROW_ID):
    user = actor(request)
    _delete(_get(user, AllowedSender, id, "allowed sender"), user)
    return Status(204, None)
