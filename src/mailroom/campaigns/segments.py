"""Segments: a closed vocabulary of conditions, turned into one query on contacts.

A condition is `{"field": …, "op": …, "value": …}`:

- contact fields — `name`/`email` contains, `email` domain_is, `country` in [codes],
  `language` is, `kind` is person/organisation, `created` last_days N, `tag` has/has_not;
- list membership — `list` subscribed/not_subscribed (only a SUBSCRIBED row counts);
- business records — `record:<type key>` has/has_not, value `{"where": field, "equals": x,
  "date": date field, "days": N}` (each part optional): "has an Invoice created in the last
  90 days", "has a Lead in stage Won", "has an Applicant for job Y". Record types are found
  through the registry (`core.record_types`) and model _meta only — never by importing a
  business app: every type whose model has a `partner` foreign key to contacts.Partner, with
  its choice fields, foreign keys (by name) and dates as filters.

`resolve` builds one queryset from Q objects and Exists subqueries (no ids in Python):
`match` all is AND, any is OR. A condition naming a list, tag, record type or field that no
longer exists raises a ValidationError naming the condition — never a wider or narrower
audience than the user built.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django_countries import countries

from mailroom.campaigns.campaign_models import Campaign, Segment
from mailroom.campaigns.models import MailingList, Subscription
from mailroom.contacts.models import Partner, PartnerTag
from mailroom.core import record_types
from mailroom.core.access import require
from mailroom.core.models import LANGUAGE_CHOICES
from mailroom.core.services import audit, snapshot

PREVIEW_SIZE = 20
MAX_CONDITIONS = 30
MAX_DAYS = 36_500
SEGMENT_FIELDS = ["name", "description", "match", "rules"]
# a campaign that still reads its segments at send time
OPEN_STATES = (Campaign.State.DRAFT, Campaign.State.SCHEDULED, Campaign.State.PREPARING)

# field → (label, {op: label}, kind of value); kinds: text, domain, countries, language,
# kind, days, tag, list, record
CONTACT_FIELDS: dict[str, tuple[str, dict[str, str], str]] = {
    "name": ("Name", {"contains": "contains"}, "text"),
    "email": ("Email", {"contains": "contains", "domain_is": "domain is"}, "text"),
    "country": ("Country", {"in": "is one of"}, "countries"),
    "language": ("Language", {"is": "is"}, "language"),
    "kind": ("Type", {"is": "is"}, "kind"),
    "created": ("Added", {"last_days": "in the last … days"}, "days"),
    "tag": ("Tag", {"has": "has", "has_not": "does not have"}, "tag"),
    "list": ("Mailing list", {"subscribed": "subscribed to", "not_subscribed":
                              "not subscribed to"}, "list"),
}
RECORD_OPS = {"has": "has at least one", "has_not": "has none"}
KIND_LABELS = {"person": "a person", "organisation": "a company"}


# --- record types, found through the registry -------------------------------------------------

@dataclass(frozen=True)
class RecordFilter:
    name: str
    label: str
    kind: str  # "choice", "fk" or "date"
    field: models.Field

    def options(self, company_id: int) -> list[tuple[str, str]]:
        if self.kind == "choice":
            return [(str(k), str(v)) for k, v in self.field.flatchoices]
        if self.kind == "fk":
            rows = self.field.related_model.objects.filter(company_id=company_id)[:500]
            return [(str(row.pk), str(row)) for row in rows]
        return []


def _partner_fk(model) -> bool:
    try:
        field = model._meta.get_field("partner")
    except FieldDoesNotExist:
        return False
    return field.many_to_one and field.related_model is Partner


def record_types_with_partner() -> dict[str, record_types.RecordType]:
    """Every registered record type that points at a contact, by key."""
    return {rt.key: rt for rt in sorted(record_types.all_types(), key=lambda t: t.label)
            if _partner_fk(rt.model)}


def record_filters(model) -> dict[str, RecordFilter]:
    """A record model's simple fields: choices, foreign keys to company rows, dates."""
    found: dict[str, RecordFilter] = {}
    user_model = settings.AUTH_USER_MODEL.lower()
    for field in model._meta.get_fields():
        if not getattr(field, "concrete", False) or field.name in ("partner", "company"):
            continue
        label = str(getattr(field, "verbose_name", field.name)).capitalize()
        if field.many_to_one:
            related = field.related_model
            if related._meta.label_lower == user_model or not _company_owned(related):
                continue
            found[field.name] = RecordFilter(field.name, label, "fk", field)
        elif field.choices:
            found[field.name] = RecordFilter(field.name, label, "choice", field)
        elif isinstance(field, models.DateField):  # DateTimeField too
            found[field.name] = RecordFilter(field.name, label, "date", field)
    return found


def _company_owned(model) -> bool:
    try:
        return model._meta.get_field("company").many_to_one
    except FieldDoesNotExist:
        return False


def default_date(filters: dict[str, RecordFilter]) -> str:
    dates = [name for name, f in filters.items() if f.kind == "date"]
    return "created_at" if "created_at" in dates else (dates[0] if dates else "")


# --- validation -------------------------------------------------------------------------------

def _days(value, what: str) -> int:
    try:
        days = int(str(value).strip())
    except (TypeError, ValueError):
        raise ValidationError(f"{what}: give a number of days.") from None
    if not 1 <= days <= MAX_DAYS:
        raise ValidationError(f"{what}: the number of days must be between 1 and {MAX_DAYS}.")
    return days


def _one_id(value, queryset, what: str) -> int:
    try:
        pk = int(str(value).strip())
    except (TypeError, ValueError):
        raise ValidationError(f"Choose {what}.") from None
    if not (-2**63 < pk < 2**63) or not queryset.filter(pk=pk).exists():
        raise ValidationError(f"The {what} chosen no longer exists.")
    return pk


def _clean_record(field: str, op: str, value, company_id: int) -> dict:
    key = field.removeprefix("record:")
    rt = record_types_with_partner().get(key)
    if rt is None:
        raise ValidationError(f"The record type {key!r} no longer exists.")
    if op not in RECORD_OPS:
        raise ValidationError(f"Choose “has at least one” or “has none” for {rt.label_plural}.")
    value = value if isinstance(value, dict) else {}
    filters = record_filters(rt.model)
    out: dict = {}
    where = str(value.get("where") or "")
    if where:
        rf = filters.get(where)
        if rf is None or rf.kind == "date":
            raise ValidationError(f"{rt.label_plural} have no field {where!r} to filter on.")
        equals = str(value.get("equals") or "").strip()
        if not equals:
            raise ValidationError(f"Choose the {rf.label.lower()} of the {rt.label_plural}.")
        if rf.kind == "choice":
            if equals not in {k for k, _ in rf.options(company_id)}:
                raise ValidationError(f"{equals!r} is not a {rf.label.lower()} of "
                                      f"{rt.label_plural}.")
        else:
            equals = _one_id(equals, rf.field.related_model.objects.filter(
                company_id=company_id), rf.label.lower())
        out.update(where=where, equals=equals)
    if value.get("days") not in (None, ""):
        date = str(value.get("date") or default_date(filters))
        if date not in filters or filters[date].kind != "date":
            raise ValidationError(f"{rt.label_plural} have no date {date!r}.")
        out.update(date=date, days=_days(value["days"], rt.label_plural))
    return {"field": f"record:{key}", "op": op, "value": out}


def clean_condition(condition, company_id: int) -> dict:
    """One condition checked and normalised; ValidationError in plain words otherwise."""
    if not isinstance(condition, dict):
        raise ValidationError("This condition is not understood.")
    field, op = str(condition.get("field") or ""), str(condition.get("op") or "")
    value = condition.get("value")
    if field.startswith("record:"):
        return _clean_record(field, op, value, company_id)
    if field not in CONTACT_FIELDS:
        raise ValidationError(f"Choose what to look at (unknown field {field!r})."
                              if field else "Choose what to look at.")
    label, ops, kind = CONTACT_FIELDS[field]
    if op not in ops:
        raise ValidationError(f"Choose how to compare the {label.lower()}.")
    if kind == "text":
        value = str(value or "").strip()
        if op == "domain_is":
            value = value.lstrip("@").lower()
            if not value or "@" in value or "." not in value:
                raise ValidationError("Give a domain such as example.com.")
        elif not value:
            raise ValidationError(f"Type the text the {label.lower()} must contain.")
        value = value[:254]
    elif kind == "countries":
        codes = value if isinstance(value, list) else [value] if value else []
        codes = [str(c).upper() for c in codes]
        known = dict(countries)
        if not codes:
            raise ValidationError("Choose at least one country.")
        unknown = [c for c in codes if c not in known]
        if unknown:
            raise ValidationError(f"Unknown country {unknown[0][:10]!r}.")
        value = sorted(set(codes))
    elif kind == "language":
        if str(value) not in dict(LANGUAGE_CHOICES):
            raise ValidationError("Choose a language.")
        value = str(value)
    elif kind == "kind":
        if not isinstance(value, str) or value not in KIND_LABELS:  # a list is unhashable
            raise ValidationError("Choose a person or a company.")
    elif kind == "days":
        value = _days(value, "Added")
    elif kind == "tag":
        value = _one_id(value, PartnerTag.objects.filter(company_id=company_id), "tag")
    elif kind == "list":
        value = _one_id(value, MailingList.objects.filter(company_id=company_id),
                        "mailing list")
    return {"field": field, "op": op, "value": value}


def check(rules, company_id: int) -> tuple[list[dict], dict[int, str]]:
    """Normalised rules and the errors by condition index (0-based)."""
    if not isinstance(rules, list):
        return [], {0: "The conditions are not understood."}
    cleaned, errors = [], {}
    for index, condition in enumerate(rules[:MAX_CONDITIONS]):
        try:
            cleaned.append(clean_condition(condition, company_id))
        except ValidationError as exc:
            errors[index] = " ".join(exc.messages)
    if len(rules) > MAX_CONDITIONS:
        errors[MAX_CONDITIONS] = f"A segment has at most {MAX_CONDITIONS} conditions."
    return cleaned, errors


def validate(rules, company_id: int) -> list[dict]:
    """Normalised rules, or a ValidationError whose lines name the condition numbers."""
    cleaned, errors = check(rules, company_id)
    if errors:
        raise ValidationError([f"Condition {i + 1}: {msg}" for i, msg in sorted(errors.items())])
    if not cleaned:
        raise ValidationError("Add at least one condition.")
    return cleaned


# --- rules → queryset --------------------------------------------------------------------------

def _q(condition: dict) -> Q:
    field, op, value = condition["field"], condition["op"], condition["value"]
    if field == "name":
        return Q(name__icontains=value)
    if field == "email":
        return Q(email__iendswith="@" + value) if op == "domain_is" else Q(
            email__icontains=value)
    if field == "country":
        return Q(country__in=value)
    if field == "language":
        return Q(language=value)
    if field == "kind":
        return Q(kind=value)
    if field == "created":
        return Q(created_at__gte=timezone.now() - timedelta(days=value))
    if field == "tag":
        found = Exists(Partner.tags.through.objects.filter(partner_id=OuterRef("pk"),
                                                           partnertag_id=value))
        return Q(found) if op == "has" else ~Q(found)
    if field == "list":
        found = Exists(Subscription.objects.filter(partner_id=OuterRef("pk"),
                                                   mailing_list_id=value,
                                                   status=Subscription.Status.SUBSCRIBED))
        return Q(found) if op == "subscribed" else ~Q(found)
    model = record_types.get(field.removeprefix("record:")).model
    records = model._default_manager.filter(partner_id=OuterRef("pk"),
                                            company_id=OuterRef("company_id"))
    if value.get("where"):
        where = value["where"]
        records = records.filter(**{f"{where}_id" if model._meta.get_field(where).many_to_one
                                    else where: value["equals"]})
    if value.get("days"):
        since = timezone.now() - timedelta(days=value["days"])
        date_field = model._meta.get_field(value["date"])
        if not isinstance(date_field, models.DateTimeField):
            since = timezone.localdate(since)
        records = records.filter(**{f"{value['date']}__gte": since})
    return Q(Exists(records)) if op == "has" else ~Q(Exists(records))


def matching(rules, match: str, company_id: int) -> models.QuerySet[Partner]:
    """The company's contacts with an address matching `rules` (validated here)."""
    cleaned = validate(rules, company_id)
    combined = Q()
    for condition in cleaned:
        combined = (combined | _q(condition)) if match == Segment.Match.ANY and combined \
            else (combined & _q(condition))
    return (Partner.objects.filter(company_id=company_id).exclude(email="")
            .filter(combined))


def resolve(segment: Segment) -> models.QuerySet[Partner]:
    """The segment's contacts now: company-scoped, each once, each with an address."""
    return matching(segment.rules, segment.match, segment.company_id)


def count(segment_or_rules, company_id: int | None = None, match: str = Segment.Match.ALL
          ) -> int:
    if isinstance(segment_or_rules, Segment):
        return resolve(segment_or_rules).count()
    return matching(segment_or_rules, match, company_id).count()


def preview(segment_or_rules, company_id: int | None = None, match: str = Segment.Match.ALL,
            size: int = PREVIEW_SIZE) -> list[Partner]:
    if isinstance(segment_or_rules, Segment):
        found = resolve(segment_or_rules)
    else:
        found = matching(segment_or_rules, match, company_id)
    return list(found.order_by("name", "pk")[:size])


# --- services ----------------------------------------------------------------------------------

def save_segment(segment: Segment, *, actor) -> Segment:
    """Create or change a segment (Mail Managers); rules validated, the change audited."""
    creating = segment.pk is None
    require(actor, "campaigns.add_segment" if creating else "campaigns.change_segment",
            segment, denied="Only Mail Managers can change segments.")
    segment.name = (segment.name or "").strip()
    segment.rules = validate(segment.rules, segment.company_id)
    segment.full_clean(exclude=["rules"], validate_constraints=False)
    with transaction.atomic():
        before = {}
        if not creating:
            previous = Segment.objects.select_for_update().get(pk=segment.pk)
            if previous.company_id != segment.company_id:
                raise ValidationError("A segment cannot move to another company.")
            before = snapshot(previous, SEGMENT_FIELDS)
        segment.updated_at = timezone.now()
        try:
            with transaction.atomic():
                segment.save()
        except IntegrityError:
            raise ValidationError({"name": "This company already has a segment with that "
                                           "name."}) from None
        audit("campaigns.segment.create" if creating else "campaigns.segment.change",
              actor=actor, obj=segment, before=before, after=snapshot(segment, SEGMENT_FIELDS))
    return segment


def delete_segment(segment: Segment, *, actor) -> None:
    """Delete a segment no campaign still has to read; the audit row keeps its rules."""
    require(actor, "campaigns.delete_segment", segment,
            denied="Only Mail Managers can delete segments.")
    with transaction.atomic():
        segment = Segment.objects.select_for_update().get(pk=segment.pk)
        waiting = segment.campaigns.filter(state__in=OPEN_STATES).order_by("name").first()
        if waiting is not None:
            raise ValidationError(
                f"The campaign “{waiting.name}” ({waiting.get_state_display().lower()}) "
                "sends to this segment; remove the segment from it first.")
        audit("campaigns.segment.delete", actor=actor, obj=segment,
              before=snapshot(segment, SEGMENT_FIELDS))
        segment.delete()
