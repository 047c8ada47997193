"""Where inbound mail may go, through the API: alias domains (/api/v1/alias-domains), aliases
(/api/v1/aliases) and allowed senders (/api/v1/allowed-senders).

Every write goes through `routing.services` (permission check, full_clean, audit row, cache
reset) by way of the API's CRUD factory (`api.crud`); this module only declares the schemas
and turns JSON into model fields and back. Rows of other companies
answer 404 exactly like rows that do not exist; a reference to one (a domain, an alias, a
force-thread record) is a 422 naming the field, worded the same as for a missing row.

No `from __future__ import annotations` here: ninja reads the view functions' annotations.
"""

from datetime import datetime
from typing import Annotated, Any, Literal

from django.contrib.contenttypes.models import ContentType
from ninja import Router, Schema
from pydantic import AfterValidator, Field

from mailroom.api import fields as F
from mailroom.api import writing
from mailroom.api.crud import Crud, Page, add_crud_routes, list_schema, reference
from mailroom.api.errors import field_error
from mailroom.api.specs import StrictIn
from mailroom.core import record_types
from mailroom.core.models import User
from mailroom.routing import services
from mailroom.routing.models import Alias, AliasDomain, AllowedSender

prefix = ""
router = Router(tags=["Routing"])

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


# --- how JSON changes a row --------------------------------------------------------------

def _thread(user: User, link: RecordLinkIn | None, company_id: int) -> tuple:
    """(content type, object id) of a force-thread record, or (None, None)."""
    if link is None:
        return None, None
    try:
        model = record_types.get(link.record_type).model
    except LookupError:
        raise field_error("thread.record_type", f"Unknown record type {link.record_type!r}.") \
            from None
    record = writing.visible(model, user).filter(pk=link.id, company_id=company_id).first()
    if record is None:
        raise field_error("thread.id", f"No {model._meta.verbose_name} with id {link.id} in "
                                       f"this company.")
    return ContentType.objects.get_for_model(model, for_concrete_model=True), record.pk


def _new_alias(user: User, data: dict) -> Alias:
    # the domain decides the company: any domain of a company the caller belongs to
    domain_id = data.pop("domain_id")
    domain = writing.visible(AliasDomain, user).filter(pk=domain_id).first()
    if domain is None:
        raise field_error("domain_id", f"No alias domain with id {domain_id}.")
    return Alias(company_id=domain.company_id, domain=domain)


def _apply_alias(user: User, alias: Alias, data: dict) -> None:
    if "domain_id" in data:
        if data["domain_id"] is None:
            raise field_error("domain_id", "This field cannot be null.")
        alias.domain = reference(user, AliasDomain, data.pop("domain_id"),
                                 alias.company_id, "domain_id")
    if "thread" in data:
        link = data.pop("thread")
        alias.thread_content_type, alias.thread_object_id = _thread(
            user, RecordLinkIn(**link) if link else None, alias.company_id)
    for name, value in data.items():
        if value is None:
            raise field_error(name, "This field cannot be null.")
        setattr(alias, name, value)


def _apply_sender(user: User, sender: AllowedSender, data: dict) -> None:
    if data.get("alias_id") is not None:
        sender.alias = reference(user, Alias, data["alias_id"], sender.company_id, "alias_id")
    elif "alias_id" in data:
        sender.alias = None
    if data.get("alias_domain_id") is not None:
        sender.alias_domain = reference(user, AliasDomain, data["alias_domain_id"],
                                        sender.company_id, "alias_domain_id")
    elif "alias_domain_id" in data:
        sender.alias_domain = None
    for name in ("pattern", "note"):
        if name in data:
            if data[name] is None:
                raise field_error(name, "This field cannot be null.")
            setattr(sender, name, data[name])


# --- the endpoints -------------------------------------------------------------------------

COMMON: dict[str, Any] = {
    "delete": services.delete,
    "rename": {"domain": "domain_id", "alias": "alias_id", "alias_domain": "alias_domain_id",
               "thread_object_id": "thread", "thread_content_type": "thread"},
    # an alias default of the wrong kind for its field (text for a foreign key)
    "wrong_type": ("defaults", "A default value has the wrong type for its field."),
}

add_crud_routes(router, Crud(
    AliasDomain, "/alias-domains", "alias_domains", ("domain", "domains"),
    out=AliasDomainOut, create_in=AliasDomainIn, patch_in=AliasDomainPatch,
    filters=DomainFilters, list_out=list_schema("AliasDomainList", AliasDomainOut),
    to_out=domain_out, save=services.save_alias_domain, **COMMON,
    summaries={"list": "List alias domains",
               "create": "Receive mail on a domain (Mail Managers)",
               "get": "An alias domain", "update": "Change an alias domain (Mail Managers)",
               "delete": "Stop receiving on a domain (Mail Managers)"},
    descriptions={"delete": "Answers 409 while aliases still use the domain."},
    ordering=("sequence", "name", "id"), search="name"))

add_crud_routes(router, Crud(
    Alias, "/aliases", "aliases", ("alias", "aliases"),
    out=AliasOut, create_in=AliasIn, patch_in=AliasPatch, filters=AliasFilters,
    list_out=list_schema("AliasList", AliasOut), to_out=alias_out,
    save=services.save_alias, **COMMON,
    summaries={"list": "List aliases", "create": "Create an alias (Mail Managers)",
               "get": "An alias", "update": "Change an alias (Mail Managers)",
               "delete": "Delete an alias (Mail Managers)"},
    descriptions={"create": "The alias belongs to its domain's company.",
                  "update": "The domain may only change to another domain of the same "
                            "company."},
    ordering=("domain__name", "local_part", "id"), search="local_part", related=("domain",),
    new_row=_new_alias, apply=_apply_alias))

add_crud_routes(router, Crud(
    AllowedSender, "/allowed-senders", "allowed_senders", ("sender", "senders"),
    out=AllowedSenderOut, create_in=AllowedSenderIn, patch_in=AllowedSenderPatch,
    filters=SenderFilters, list_out=list_schema("AllowedSenderList", AllowedSenderOut),
    to_out=sender_out, save=services.save_allowed_sender, **COMMON,
    summaries={"list": "List allowed senders (Mail Managers)",
               "create": "Allow a sender (Mail Managers)",
               "get": "An allowed sender (Mail Managers)",
               "update": "Change an allowed sender (Mail Managers)",
               "delete": "Remove an allowed sender (Mail Managers)"},
    descriptions={"create": "For one alias, one domain, or (neither) the whole company."},
    ordering=("pattern", "id"), search="pattern", apply=_apply_sender))
