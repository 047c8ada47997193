"""Segments through the API (/api/v1/segments): read, count, create and change.

A segment's `rules` have the shape the segment editor saves — a list of conditions
`{"field": …, "op": …, "value": …}` (segments.py lists the vocabulary) — and every write
goes through `segments.save_segment`, so the API refuses what the editor refuses, in the
same words ("Condition 2: Choose a language."). `summary` says the rules in words, with the
labels of the editor's selects. The count is `segments.count`, the one behind the editor's
live count. Segments of other companies answer 404, like segments that do not exist.

Mounted inside `campaigns.api.router` (the app's router the API site finds).

No `from __future__ import annotations` here: ninja reads the view functions' annotations.
"""

from collections.abc import Callable
from datetime import datetime
from functools import cache

from django.core.exceptions import ValidationError
from django_countries import countries
from ninja import Query, Router, Schema, Status
from pydantic import Field

from mailroom.api.auth import actor, require_perm
from mailroom.api.crud import ERRORS, Page, list_schema, page, row_id
from mailroom.api.errors import ApiError, FieldErrors, field_error
from mailroom.api.writing import company_for_create
from mailroom.campaigns import segments
from mailroom.campaigns.campaign_models import Campaign, Segment
from mailroom.campaigns.models import MailingList
from mailroom.contacts.models import PartnerTag
from mailroom.core.models import LANGUAGE_CHOICES

# tags on each operation: a mounted router would add the campaigns router's tag to its own
TAGS = ["Segments"]
router = Router()

RuleValue = int | str | list[str] | dict[str, int | str] | None


class RuleSchema(Schema):
    field: str = Field(max_length=120, description=(
        "name, email, country, language, kind, created, tag, list, or record:<type key> "
        "(e.g. record:invoicing.invoice)."))
    op: str = Field(max_length=40, description=(
        "name/email: contains; email: domain_is; country: in; language, kind: is; created: "
        "last_days; tag, record:…: has / has_not; list: subscribed / not_subscribed."))
    value: RuleValue = Field(None, description=(
        "Text; a list of country codes; a language code; person or organisation; a number "
        "of days; a tag or list id; for records {\"where\": field, \"equals\": value, "
        "\"date\": date field, \"days\": N}, each part optional."))


class SegmentOut(Schema):
    id: int
    company_id: int
    name: str
    description: str
    match: str = Field(description="all (every condition) or any (one condition is enough).")
    conditions: int
    summary: str = Field(description="The rules in words, as the segment editor shows them.")
    created_at: datetime
    updated_at: datetime


class SegmentDetailOut(SegmentOut):
    rules: list[RuleSchema]


SegmentList = list_schema("SegmentList", SegmentOut)


class SegmentIn(Schema):
    company_id: int | None = Field(None, description="On create; default: your current "
                                                     "company.")
    name: str = Field(max_length=120)
    description: str = Field("", max_length=5000)
    match: str = Field("all", description="all or any.")
    rules: list[RuleSchema] = Field(max_length=100, description=(
        f"1 to {segments.MAX_CONDITIONS} conditions, combined by match."))


class SegmentCountOut(Schema):
    count: int = Field(description="Contacts with an address matching the rules now.")


# --- the rules in words -----------------------------------------------------------------------

def _namer(company_id: int) -> Callable[[dict], str]:
    """A function saying one condition in words, with the editor's labels; each list, tag
    or record it names is looked up once per namer (a page of segments shares one)."""
    country_names = dict(countries)
    languages = {str(k): str(v) for k, v in LANGUAGE_CHOICES}

    @cache
    def _named(model, pk: str) -> str:
        known = pk.isascii() and pk.isdigit() and len(pk) < 19
        row = model.objects.filter(company_id=company_id, pk=int(pk)).first() if known else None
        return str(row) if row is not None else f"#{pk} (gone)"

    def named(model, pk) -> str:
        return _named(model, str(pk))

    def record(field: str, op: str, value) -> str:
        rt = segments.record_types_with_partner().get(field.removeprefix("record:"))
        if rt is None:
            return f"{field} (no longer exists)"
        value = value if isinstance(value, dict) else {}
        filters = segments.record_filters(rt.model)
        words = f"{rt.label_plural}: {segments.RECORD_OPS.get(op, op)}"
        where = filters.get(str(value.get("where") or ""))
        if where is not None:
            equals = value.get("equals")
            shown = (dict(where.options(company_id)).get(str(equals), str(equals))
                     if where.kind == "choice" else named(where.field.related_model, equals))
            words += f" with {where.label.lower()} {shown}"
        if value.get("days"):
            date = filters.get(str(value.get("date") or ""))
            label = date.label.lower().removesuffix(" at").removesuffix(" on") if date else ""
            words += f", {label} in the last {value['days']} days" if label else \
                f", in the last {value['days']} days"
        return words

    def describe(condition: dict) -> str:
        if not isinstance(condition, dict):
            return "(not understood)"
        field, op = str(condition.get("field") or ""), str(condition.get("op") or "")
        value = condition.get("value")
        if field.startswith("record:"):
            return record(field, op, value)
        if field not in segments.CONTACT_FIELDS:
            return f"{field or '?'} (unknown)"
        label, ops, kind = segments.CONTACT_FIELDS[field]
        how = ops.get(op, op)
        if kind == "days":
            return f"{label} {how.replace('…', str(value))}"
        if kind == "countries":
            codes = value if isinstance(value, list) else [value]
            shown = ", ".join(country_names.get(str(c), str(c)) for c in codes)
        elif kind == "language":
            shown = languages.get(str(value), str(value))
        elif kind == "kind":
            shown = segments.KIND_LABELS.get(str(value), str(value))
        elif kind == "tag":
            shown = named(PartnerTag, value)
        elif kind == "list":
            shown = named(MailingList, value)
        else:
            shown = f"“{value}”"
        return f"{label} {how} {shown}"

    return describe


def summary(segment: Segment, describe: Callable[[dict], str] | None = None) -> str:
    rules = segment.rules if isinstance(segment.rules, list) else []
    describe = describe or _namer(segment.company_id)
    joiner = " or " if segment.match == Segment.Match.ANY else " and "
    return joiner.join(describe(c) for c in rules) or "(no conditions)"


def segment_out(item: Segment, describe: Callable[[dict], str] | None = None) -> dict:
    rules = item.rules if isinstance(item.rules, list) else []
    return {"id": item.pk, "company_id": item.company_id, "name": item.name,
            "description": item.description, "match": item.match, "conditions": len(rules),
            "summary": summary(item, describe), "created_at": item.created_at,
            "updated_at": item.updated_at}


def segment_detail_out(item: Segment) -> dict:
    rules = item.rules if isinstance(item.rules, list) else []
    return {**segment_out(item),
            "rules": [{"field": str(c.get("field", "")), "op": str(c.get("op", "")),
                       "value": c.get("value")} for c in rules if isinstance(c, dict)]}


# --- helpers ----------------------------------------------------------------------------------

def _segment(user, pk: int) -> Segment:
    require_perm(user, Segment, "view")
    item = Segment.objects.for_user(user).filter(pk=pk).first()
    if item is None:
        raise ApiError(404, "No such segment.")
    return item


def campaign_segments(user, campaign: Campaign, ids: list[int]) -> list[Segment]:
    """The segments `ids` for `campaign`: each one the caller can see, of the campaign's
    company; otherwise a 422 naming the ids that are not (missing and someone else's look
    the same)."""
    found = list(Segment.objects.for_user(user).filter(pk__in=ids,
                                                       company_id=campaign.company_id))
    missing = sorted(set(ids) - {s.pk for s in found})
    if missing:
        raise field_error("segment_ids", "No segment with id "
                          f"{', '.join(map(str, missing))} in this campaign's company.")
    return found


def _save(user, item: Segment, data: SegmentIn) -> Segment:
    if data.match not in Segment.Match.values:
        raise field_error("match", "Use all or any.")
    item.name, item.description, item.match = data.name, data.description, data.match
    item.rules = [rule.model_dump() for rule in data.rules]
    try:
        return segments.save_segment(item, actor=user)
    except ValidationError as exc:
        if hasattr(exc, "error_dict"):
            raise  # field errors (name, …): the API's handler names the fields
        raise FieldErrors([("rules", str(m)) for m in exc.messages]) from None


# --- endpoints --------------------------------------------------------------------------------

@router.get("/segments", response={200: SegmentList, **ERRORS}, operation_id="segments_list",
            tags=TAGS, summary="Your companies' segments")
def list_segments(request, filters: Query[Page]):
    user = actor(request)
    require_perm(user, Segment, "view")
    namers: dict[int, Callable[[dict], str]] = {}

    def out(item: Segment) -> dict:
        describe = namers.setdefault(item.company_id, _namer(item.company_id))
        return segment_out(item, describe)

    return page(Segment.objects.for_user(user), filters.limit, filters.offset, out)


@router.post("/segments", response={201: SegmentDetailOut, **ERRORS},
             operation_id="segments_create", tags=TAGS, summary="Create a segment (Mail Managers)",
             description="The rules are checked as the segment editor checks them; a 422 "
                         "names each condition that needs fixing.")
def create_segment(request, data: SegmentIn):
    user = actor(request)
    item = Segment(company_id=company_for_create(user, data.company_id))
    return Status(201, segment_detail_out(_save(user, item, data)))


@router.get("/segments/{id}", response={200: SegmentDetailOut, **ERRORS},
            operation_id="segments_get", tags=TAGS, summary="A segment with its rules")
def get_segment(request, id: int = row_id()):
    return segment_detail_out(_segment(actor(request), id))


@router.put("/segments/{id}", response={200: SegmentDetailOut, **ERRORS},
            operation_id="segments_update", tags=TAGS, summary="Change a segment (Mail Managers)",
            description="Replaces name, description, match and rules. Campaigns not sent yet "
                        "read the new rules when they are sent.")
def update_segment(request, data: SegmentIn, id: int = row_id()):
    user = actor(request)
    item = _segment(user, id)
    if data.company_id is not None and data.company_id != item.company_id:
        raise field_error("company_id", "A segment cannot move to another company.")
    return segment_detail_out(_save(user, item, data))


@router.get("/segments/{id}/count", response={200: SegmentCountOut, **ERRORS},
            operation_id="segments_count", tags=TAGS,
            summary="How many contacts the segment has now")
def count_segment(request, id: int = row_id()):
    item = _segment(actor(request), id)
    try:
        return {"count": segments.count(item)}
    except ValidationError as exc:
        raise FieldErrors([("rules", str(m)) for m in exc.messages]) from None
