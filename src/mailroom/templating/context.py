"""The plain data a template sees: only the fields each record type registered.

Templates never receive ORM objects or anything callable: `object` is a tree of dicts, lists,
strings, numbers, dates and Decimals built from `RecordType.template_fields` (dotted paths),
plus `company`, `user` and the caller's `ctx`. A path through a to-many relation
(`lines.description`) gives a list of dicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import models
from django.urls import NoReverseMatch, reverse

from mailroom.core import record_types
from mailroom.lib.sandbox import ANYTHING, ListOf

# every context has these, whatever the record type registered
COMPANY_FIELDS = ("name", "email", "phone", "website", "currency", "language",
                  "primary_color", "secondary_color")
USER_FIELDS = ("name", "first_name", "last_name", "email")
PARTNER_ALWAYS = ("id", "name", "email", "language")


@dataclass(frozen=True)
class Placeholder:
    path: str  # "object.partner.name"
    label: str  # "Customer › Name"
    loop: str = ""  # "object.lines" when the path goes through a list: read in a loop

    @property
    def snippet(self) -> str:
        """What the placeholder browser inserts: the field, or a loop over its list."""
        if not self.loop:
            return f"{{{{ {self.path} }}}}"
        name = self.loop.rsplit(".", 1)[-1]
        item = name[:-1] if name.endswith("s") and len(name) > 1 else "item"
        rest = self.path.removeprefix(self.loop + ".")
        return f"{{% for {item} in {self.loop} %}}{{{{ {item}.{rest} }}}}{{% endfor %}}"


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, Decimal, bool)):
        return value
    if hasattr(value, "isoformat"):  # date, datetime, time
        return value
    return str(value)  # a related object or anything else: its display text


def _field_value(obj: models.Model, name: str) -> Any:
    value = getattr(obj, name, None)
    if callable(value):  # never hand a method to a template
        return None
    return _plain(value)


def _paths_tree(paths: tuple[str, ...]) -> dict:
    tree: dict = {}
    for path in paths:
        node = tree
        for part in path.split("."):
            node = node.setdefault(part, {})
    return tree


def _extract(obj: Any, tree: dict) -> Any:
    if obj is None:
        return None
    if isinstance(obj, models.Manager):
        return [_extract(item, tree) for item in obj.all()]
    data: dict[str, Any] = {"id": obj.pk}
    for name, sub in tree.items():
        if sub:  # a relation
            data[name] = _extract(getattr(obj, name, None), sub)
        else:
            data[name] = _field_value(obj, name)
            display = getattr(obj, f"get_{name}_display", None)
            if callable(display):
                data[f"{name}_label"] = str(display())
    return data


def record_paths(record_type: record_types.RecordType) -> tuple[str, ...]:
    paths = list(record_type.template_fields)
    if any(p.startswith("partner.") for p in paths):
        paths += [f"partner.{f}" for f in PARTNER_ALWAYS if f"partner.{f}" not in paths]
    return tuple(paths)


def record_url(record: models.Model) -> str:
    parts = _change_url_parts(record._meta.app_label, record._meta.model_name)
    if parts is None:
        return ""
    return f"{settings.BASE_URL.rstrip('/')}{parts[0]}{record.pk}{parts[1]}"


_PK_MARK = 918273645


@lru_cache(maxsize=256)
def _change_url_parts(app_label: str, model_name: str) -> tuple[str, str] | None:
    """The admin change URL around its id, reversed once per model (the resolver costs more
    than the rest of a record's context; a mass send builds thousands)."""
    try:
        path = reverse(f"admin:{app_label}_{model_name}_change", args=[_PK_MARK])
    except NoReverseMatch:
        return None
    prefix, _, suffix = path.partition(str(_PK_MARK))
    return prefix, suffix


def related_lookups(model: type[models.Model], record_type: record_types.RecordType
                    ) -> tuple[list[str], list[str]]:
    """(select_related, prefetch_related) lookups that load what `build_context` reads for
    many records of `model` in a few queries instead of a few per record."""
    joins: list[str] = []
    prefetches: list[str] = []

    def walk(current, tree: dict, prefix: str, prefetching: bool) -> None:
        for name, sub in tree.items():
            if not sub:
                continue
            field = _model_field(current, name)
            if field is None or not field.is_relation or field.related_model is None:
                continue
            lookup = f"{prefix}{name}"
            if (field.many_to_one or field.one_to_one) and not prefetching:
                joins.append(lookup)
                walk(field.related_model, sub, f"{lookup}__", False)
            else:
                prefetches.append(lookup)
                walk(field.related_model, sub, f"{lookup}__", True)

    walk(model, _paths_tree(record_paths(record_type)), "", False)
    return joins, prefetches


def company_data(company) -> dict:
    data = {name: getattr(company, name, "") for name in COMPANY_FIELDS}
    data["id"] = company.pk
    lines = getattr(company, "address_lines", None) or []  # a property on Company
    data["address_lines"] = list(lines() if callable(lines) else lines)
    data["logo_url"] = (settings.BASE_URL.rstrip("/") + company.logo.url
                        if getattr(company, "logo", None) else "")
    return data


def user_data(user) -> dict:
    if user is None or not getattr(user, "pk", None):
        return {name: "" for name in USER_FIELDS}
    return {"name": user.get_full_name() or user.get_username(), "first_name": user.first_name,
            "last_name": user.last_name, "email": user.email}


def build_context(record: models.Model, *, user=None, ctx: dict | None = None,
                  companies: dict | None = None) -> dict:
    """The plain data a template sees for `record`. `companies`: a cache of the companies'
    data (a mass send renders thousands of records of one company)."""
    record_type = record_types.for_model(record)
    if record_type is None:
        raise LookupError(f"{record._meta.verbose_name} is not a registered record type.")
    obj = _extract(record, _paths_tree(record_paths(record_type)))
    obj["display_name"] = str(record)
    obj["url"] = record_url(record)
    company = getattr(record, "company", None)
    if company is None:
        data = {}
    elif companies is None:
        data = company_data(company)
    else:
        if company.pk not in companies:
            companies[company.pk] = company_data(company)
        data = dict(companies[company.pk])
    return {
        "object": obj,
        "company": data,
        "user": user_data(user),
        "ctx": dict(ctx or {}),
    }


def placeholders_for(record_type: record_types.RecordType) -> list[Placeholder]:
    """What the placeholder browser offers, labelled with the models' verbose names."""
    model = record_type.model
    found = []
    for path in record_paths(record_type):
        labels, current, loop = [], model, ""
        parts = path.split(".")
        for i, part in enumerate(parts):
            try:
                field = current._meta.get_field(part)
            except Exception:
                labels.append(part.replace("_", " ").capitalize())
                current = None
                break
            labels.append(str(getattr(field, "verbose_name", part)).capitalize())
            if not loop and i < len(parts) - 1 and (field.one_to_many or field.many_to_many):
                loop = "object." + ".".join(parts[:i + 1])
            current = getattr(field, "related_model", None) or current
        found.append(Placeholder(f"object.{path}", " › ".join(labels), loop))
    found += [Placeholder(f"company.{f}", f"Company › {f.replace('_', ' ').capitalize()}")
              for f in COMPANY_FIELDS]
    found += [Placeholder(f"user.{f}", f"Sender › {f.replace('_', ' ').capitalize()}")
              for f in USER_FIELDS]
    return found


# --- what a context holds, for checking templates before they are saved ----------------------

_DATE_PARTS = {"year": None, "month": None, "day": None}
_TIME_PARTS = {"hour": None, "minute": None, "second": None}


def _model_field(model: type[models.Model] | None, name: str):
    if model is None:
        return None
    try:
        return model._meta.get_field(name)
    except Exception:  # a property such as `subtotal`: read by getattr, not a model field
        return None


def _leaf(model: type[models.Model] | None, name: str) -> dict | None:
    field = _model_field(model, name)
    if isinstance(field, models.DateTimeField):
        return {**_DATE_PARTS, **_TIME_PARTS}
    if isinstance(field, models.DateField):
        return dict(_DATE_PARTS)
    return None


def _schema(model: type[models.Model] | None, tree: dict) -> dict:
    """What `_extract` builds from `tree` on a `model` row, as a sandbox schema."""
    data: dict = {"id": None}
    for name, sub in tree.items():
        field = _model_field(model, name)
        if sub:  # a relation: an object, or a list of them for a to-many one
            item = _schema(getattr(field, "related_model", None), sub)
            many = field is not None and (field.one_to_many or field.many_to_many)
            data[name] = ListOf(item) if many else item
        else:
            data[name] = _leaf(model, name)
            if model is not None and callable(getattr(model, f"get_{name}_display", None)):
                data[f"{name}_label"] = None
    return data


def context_schema(record_type: record_types.RecordType) -> dict:
    """Every path `build_context` gives a template of `record_type` (`ctx` is free-form):
    what saving a template checks its placeholders against."""
    obj = _schema(record_type.model, _paths_tree(record_paths(record_type)))
    obj.update(display_name=None, url=None)
    return {
        "object": obj,
        "company": {**dict.fromkeys(COMPANY_FIELDS), "id": None,
                    "address_lines": ListOf(None), "logo_url": None},
        "user": dict.fromkeys(USER_FIELDS),
        "ctx": ANYTHING,
    }
