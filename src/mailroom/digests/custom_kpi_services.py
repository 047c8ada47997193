"""Custom KPIs: validated at save, so computing one never runs anything a user typed.

A custom KPI is `aggregate(rows of a record type whose date falls in the window)`, narrowed
by filters. Every name a user gives (record type, date field, value field, filter fields) is
checked against the record type's model and only then used as a field name; operators come
from a fixed list that maps to fixed ORM lookups, and filter values are converted with the
field's own `to_python`. Nothing else reaches the ORM.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Avg, Q, Sum
from django.utils import timezone

from mailroom.core import record_types
from mailroom.core.access import perm, require
from mailroom.core.kpis import Unit
from mailroom.core.services import audit, snapshot
from mailroom.digests.models import CustomKpi

Aggregate = CustomKpi.Aggregate

EQUALS, NOT_EQUALS = "equals", "not equals"
GREATER, LESS = "greater than", "less than"
CONTAINS, IS_SET, IS_NOT_SET = "contains", "is set", "is not set"
# longest first, so "is not set" is never read as "is" + "not set"
OPERATORS = (IS_NOT_SET, NOT_EQUALS, GREATER, LESS, CONTAINS, EQUALS, IS_SET)
NO_VALUE = (IS_SET, IS_NOT_SET)
UNITS = [(Unit.COUNT.value, "Count"), (Unit.MONEY.value, "Money (company currency)"),
         (Unit.DURATION.value, "Duration (seconds)"), (Unit.PERCENT.value, "Percent")]

NUMBER_TYPES = (models.IntegerField, models.DecimalField, models.FloatField)
TEXT_TYPES = (models.CharField, models.TextField)
# fields a filter may use: plain values (no relations, files, JSON or binary data)
FILTER_TYPES = (models.BooleanField, models.DateField, models.TimeField, *NUMBER_TYPES,
                *TEXT_TYPES)


# -- what a record type offers ---------------------------------------------------------------

def model_of(record_type: str) -> type[models.Model]:
    """The model of a registered record type that belongs to a company."""
    try:
        model = record_types.get(record_type).model
    except LookupError:
        raise ValidationError(
            {"record_type": f"{record_type or 'An empty value'!r} is not a record type."}
        ) from None
    if not any(f.name == "company" for f in model._meta.concrete_fields):
        raise ValidationError({"record_type": "This record type has no company."})
    return model


def _plain(model) -> list[models.Field]:
    return [f for f in model._meta.concrete_fields
            if not f.is_relation and not f.primary_key and f.name != "company"]


def date_fields(model) -> list[models.Field]:
    return [f for f in _plain(model) if isinstance(f, models.DateField)]


def number_fields(model) -> list[models.Field]:
    return [f for f in _plain(model) if isinstance(f, NUMBER_TYPES)
            and not isinstance(f, models.BooleanField) and f.name != "number"]


def filter_fields(model) -> list[models.Field]:
    return [f for f in _plain(model) if isinstance(f, FILTER_TYPES)
            and f.name not in {"password"} and not f.name.startswith("lease_")]


def label(field: models.Field) -> str:
    return str(field.verbose_name).capitalize()


# -- filters -----------------------------------------------------------------------------------

def parse_line(line: str) -> dict:
    """"stage equals won" → {"field": "stage", "op": "equals", "value": "won"}. The field is
    the first word; the operator one of OPERATORS; the value the rest (may be empty)."""
    name, _, rest = line.strip().partition(" ")
    rest = rest.strip()
    lowered = rest.lower()
    for op in OPERATORS:
        if lowered == op or lowered.startswith(op + " "):
            return {"field": name, "op": op, "value": rest[len(op):].strip()}
    return {"field": name, "op": rest.split(" ", 1)[0] if rest else "", "value": ""}


def format_line(item: dict) -> str:
    return " ".join(p for p in (str(item.get("field", "")), str(item.get("op", "")),
                                str(item.get("value", ""))) if p)


def _kind(field: models.Field) -> str:
    if field.choices:
        return "one of " + ", ".join(str(text) for _, text in field.flatchoices)
    if isinstance(field, models.BooleanField):
        return "yes or no"
    if isinstance(field, NUMBER_TYPES):
        return "a number"
    if isinstance(field, models.DateTimeField):
        return "a date and time (2026-03-31 or 2026-03-31 14:00)"
    if isinstance(field, models.DateField):
        return "a date (2026-03-31)"
    if isinstance(field, models.TimeField):
        return "a time (14:00)"
    return "a text"


def convert(field: models.Field, raw: str):
    """The Python value of `raw` for `field`; ValueError with a plain reason."""
    raw = str(raw).strip()
    if field.choices:
        for value, text in field.flatchoices:
            if raw.lower() in (str(value).lower(), str(text).lower()):
                return value
        raise ValueError(f"is not {_kind(field)}")
    if isinstance(field, models.BooleanField):
        answers = {"yes": True, "true": True, "1": True, "no": False, "false": False, "0": False}
        if raw.lower() not in answers:
            raise ValueError("is not yes or no")
        return answers[raw.lower()]
    try:
        value = field.to_python(raw)
    except ValidationError:
        value = None
    if value is None or (isinstance(value, float) and value != value):
        raise ValueError(f"is not {_kind(field)}")
    if isinstance(value, Decimal) and not value.is_finite():
        raise ValueError("is not a number")
    return value


def _check_filters(model, items) -> list[dict]:
    """Validated, normalized filters; ValidationError({"filters": "Filter 2: ..."})."""
    if not isinstance(items, list):
        raise ValidationError({"filters": "Filters must be a list of conditions."})
    fields = {f.name: f for f in filter_fields(model)}
    normalized, errors = [], []
    for number, item in enumerate(items, start=1):
        where = f"Filter {number}"
        if not isinstance(item, dict):
            errors.append(f"{where}: write it as “field operator value”.")
            continue
        name, op = str(item.get("field", "")).strip(), str(item.get("op", "")).strip().lower()
        raw = str(item.get("value", "") if item.get("value") is not None else "").strip()
        field = fields.get(name)
        if field is None:
            errors.append(f"{where}: {name or '(empty)'!r} is not a field you can filter "
                          f"on; use one of {', '.join(sorted(fields))}.")
            continue
        if op not in OPERATORS:
            errors.append(f"{where}: {op or '(empty)'!r} is not an operator; use one of "
                          f"{', '.join(OPERATORS)}.")
            continue
        if op in (GREATER, LESS) and (field.choices or not isinstance(
                field, (*NUMBER_TYPES, models.DateField, models.TimeField))):
            errors.append(f"{where}: “{op}” needs a number or date field, not {label(field)}.")
            continue
        if op == CONTAINS and (field.choices or not isinstance(field, TEXT_TYPES)):
            errors.append(f"{where}: “contains” needs a text field, not {label(field)}.")
            continue
        if op in NO_VALUE:
            normalized.append({"field": name, "op": op, "value": ""})
            continue
        if not raw:
            errors.append(f"{where}: give a value for {label(field)}.")
            continue
        if op == CONTAINS:
            normalized.append({"field": name, "op": op, "value": raw[:200]})
            continue
        try:
            value = convert(field, raw)
        except ValueError as exc:
            errors.append(f"{where}: {raw!r} {exc} for {label(field)}.")
            continue
        normalized.append({"field": name, "op": op, "value": _stored(value)})
    if errors:
        raise ValidationError({"filters": errors})
    return normalized


def _stored(value) -> str | bool | int:
    """A JSON-safe form of a converted value that `convert` reads back."""
    if isinstance(value, bool | int):
        return value
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


# -- validation and saving --------------------------------------------------------------------

def validate_custom_kpi(kpi: CustomKpi) -> None:
    """Check every name against the record type's model and normalize the filters.
    Raises ValidationError keyed by form field."""
    model = model_of(kpi.record_type)
    errors: dict[str, list[str]] = {}
    dates = {f.name: f for f in date_fields(model)}
    if kpi.date_field not in dates:
        errors.setdefault("date_field", []).append(
            f"Pick a date of {model._meta.verbose_name_plural}: {', '.join(sorted(dates))}.")
    numbers = {f.name: f for f in number_fields(model)}
    if kpi.aggregate == Aggregate.COUNT:
        kpi.value_field = ""
        if kpi.unit != Unit.COUNT:
            errors.setdefault("unit", []).append("A count of records is a count; pick "
                                                 "“Count” or sum/average a number field.")
    elif kpi.aggregate in (Aggregate.SUM, Aggregate.AVG):
        if kpi.value_field not in numbers:
            errors.setdefault("value_field", []).append(
                f"Pick a number field of {model._meta.verbose_name_plural} to "
                f"{'sum' if kpi.aggregate == Aggregate.SUM else 'average'}: "
                f"{', '.join(sorted(numbers)) or 'this record type has none'}.")
    else:
        errors.setdefault("aggregate", []).append("Pick count, sum or average.")
    if kpi.unit not in dict(UNITS):
        errors.setdefault("unit", []).append("Pick count, money, duration or percent.")
    try:
        kpi.filters = _check_filters(model, kpi.filters or [])
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)


def save_custom_kpi(kpi: CustomKpi, *, actor) -> CustomKpi:
    """Create or change a custom KPI: validated, company checked, audited."""
    creating = kpi.pk is None
    require(actor, perm(CustomKpi, "add" if creating else "change"), kpi)
    validate_custom_kpi(kpi)
    kpi.full_clean()
    with transaction.atomic():
        before = {} if creating else snapshot(CustomKpi.objects.get(pk=kpi.pk))
        kpi.save()
        audit("digests.custom_kpi." + ("create" if creating else "update"), actor=actor,
              obj=kpi, before=before, after=snapshot(kpi))
    return kpi


def delete_custom_kpi(kpi: CustomKpi, *, actor) -> None:
    require(actor, perm(CustomKpi, "delete"), kpi)
    with transaction.atomic():
        audit("digests.custom_kpi.delete", actor=actor, obj=kpi, before=snapshot(kpi))
        kpi.delete()


# -- computing ---------------------------------------------------------------------------------

def _condition(model, item: dict, zone) -> Q:
    field = model._meta.get_field(item["field"])  # validated at save: a plain field name
    name, op = field.name, item["op"]
    if op == IS_SET:
        blank = Q(**{name: ""}) if isinstance(field, TEXT_TYPES) else Q()
        return Q(**{f"{name}__isnull": False}) & ~blank
    if op == IS_NOT_SET:
        empty = Q(**{f"{name}__isnull": True})
        return empty | Q(**{name: ""}) if isinstance(field, TEXT_TYPES) else empty
    if op == CONTAINS:
        return Q(**{f"{name}__icontains": str(item["value"])})
    value = convert(field, item["value"])
    if isinstance(value, datetime) and timezone.is_naive(value):
        value = value.replace(tzinfo=zone)
    lookup = {EQUALS: name, NOT_EQUALS: name, GREATER: f"{name}__gt", LESS: f"{name}__lt"}[op]
    condition = Q(**{lookup: value})
    return ~condition if op == NOT_EQUALS else condition


def queryset(kpi: CustomKpi, company, start, end):
    """The rows of `company` the KPI aggregates for the window [start, end)."""
    model = model_of(kpi.record_type)
    zone = start.tzinfo  # the company's timezone: a filter's "2026-03-01 08:00" is local
    date = model._meta.get_field(kpi.date_field)
    if not isinstance(date, models.DateTimeField):
        start, end = start.date(), end.date()
    rows = model._default_manager.filter(company=company, **{
        f"{date.name}__gte": start, f"{date.name}__lt": end})
    for item in kpi.filters or []:
        rows = rows.filter(_condition(model, item, zone))
    if kpi.unit == Unit.MONEY and any(f.name == "currency" for f in model._meta.fields):
        rows = rows.filter(currency=company.currency)  # amounts in the company's currency only
    return rows


def compute(kpi: CustomKpi, company, start, end):
    rows = queryset(kpi, company, start, end)
    if kpi.aggregate == Aggregate.COUNT:
        return rows.count()
    field = model_of(kpi.record_type)._meta.get_field(kpi.value_field)
    if kpi.aggregate == Aggregate.SUM:
        value = rows.aggregate(value=Sum(field.name))["value"]
        return value if value is not None else (Decimal("0") if isinstance(
            field, models.DecimalField) else 0)
    return rows.aggregate(value=Avg(field.name))["value"]

