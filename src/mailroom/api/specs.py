"""What the API knows about one record type, derived from its registry entry and its model.

`RecordSpec.build(record_type)` reads the RecordType's `api_fields` and the model's fields
and produces the pydantic schemas (create, patch, out, filters), the search and filter
fields, and the app's writer functions (`<app>.services.save_<model>`, `set_lines`,
`delete_<model>`) when the app provides them.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.db import models
from ninja import Schema
from pydantic import ConfigDict, Field, create_model

from mailroom.api import fields as F
from mailroom.core.record_types import RecordType

log = logging.getLogger(__name__)

STATE_NAMES = ("state", "stage", "status")
SEARCH_NAMES = ("name", "partner_name", "ref", "email", "email_from")
# Read-only fields worth showing beyond `api_fields` and plain `template_fields`.
EXTRA_READ = ("created_at", "updated_at", "is_blacklisted", "bounce_count", "active")
# Choice fields with more values than this are not offered as list filters.
MAX_FILTER_CHOICES = 20


class StrictIn(Schema):
    model_config = ConfigDict(extra="forbid")


def app_services(model: type[models.Model]) -> Any | None:
    """The model's app `services` module, if it has one."""
    name = f"{apps.get_app_config(model._meta.app_label).name}.services"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            return None
        raise


def accepts(func: Callable, name: str) -> bool:
    try:
        return name in inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False


def _concrete(model: type[models.Model], name: str) -> models.Field | None:
    """Resolve an API name (`partner_id` or `stage`) to a concrete model field."""
    for f in model._meta.concrete_fields:
        if name in (f.name, f.attname):
            return f
    return None


@dataclass
class LinesSpec:
    """Child rows edited with their parent (quotation and invoice lines)."""

    model: type[models.Model]
    parent_field: models.ForeignKey
    write_fields: dict[str, models.Field]
    read_fields: dict[str, models.Field]
    many_fields: dict[str, models.ManyToManyField]
    item_in: type[Schema]
    item_out: type[Schema]
    set_lines: Callable | None


@dataclass
class RecordSpec:
    record_type: RecordType
    model: type[models.Model]
    write_fields: dict[str, models.Field]
    read_fields: dict[str, models.Field]
    fk_fields: dict[str, models.ForeignKey]
    search_fields: list[str]
    filter_fields: dict[str, models.Field]
    create_in: type[Schema] = field(init=False)
    patch_in: type[Schema] = field(init=False)
    out: type[Schema] = field(init=False)
    list_out: type[Schema] = field(init=False)
    filters: type[Schema] = field(init=False)
    lines: LinesSpec | None = None
    save_fn: Callable | None = None
    delete_fn: Callable | None = None

    @property
    def slug(self) -> str:
        return self.record_type.slug

    @property
    def label(self) -> str:
        return self.record_type.label

    @property
    def schema_prefix(self) -> str:
        return self.model.__name__

    @classmethod
    def build(cls, record_type: RecordType) -> RecordSpec:
        model = record_type.model
        write_fields: dict[str, models.Field] = {}
        for name in record_type.api_fields:
            f = _concrete(model, name)
            if f is None or f.primary_key or f.name == "company":
                log.warning("API: %s.api_fields names %r, which is not a writable column",
                            record_type.key, name)
                continue
            write_fields[F.api_name(f)] = f
        read_fields = dict(write_fields)
        plain_template = [n for n in record_type.template_fields if "." not in n]
        for name in (*plain_template, *EXTRA_READ):
            f = _concrete(model, name)
            if f is not None and not f.primary_key and f.name != "company":
                read_fields.setdefault(F.api_name(f), f)
        fk_fields = {n: f for n, f in write_fields.items() if f.is_relation}
        search = [n for n in SEARCH_NAMES
                  if isinstance(_concrete(model, n), (models.CharField, models.TextField))]
        filter_fields: dict[str, models.Field] = {}
        for name, f in read_fields.items():
            if f.is_relation or isinstance(f, models.BooleanField):
                filter_fields[name] = f
            elif f.choices and (f.name in STATE_NAMES
                                or len(f.flatchoices) <= MAX_FILTER_CHOICES):
                filter_fields[name] = f
        spec = cls(record_type=record_type, model=model, write_fields=write_fields,
                   read_fields=read_fields, fk_fields=fk_fields, search_fields=search,
                   filter_fields=filter_fields)
        services = app_services(model)
        model_name = model._meta.model_name
        if services is not None:
            spec.save_fn = getattr(services, f"save_{model_name}", None)
            spec.delete_fn = getattr(services, f"delete_{model_name}", None)
        spec.lines = _lines_spec(model, services)
        spec._make_schemas()
        return spec

    @property
    def lines_writable(self) -> bool:
        if self.lines is None:
            return False
        if self.lines.set_lines is not None:
            return True
        return self.save_fn is not None and accepts(self.save_fn, "lines")

    @property
    def state_field(self) -> str | None:
        for name in STATE_NAMES:
            f = self.read_fields.get(name)
            if f is not None and f.choices:
                return name
        return None

    def _make_schemas(self) -> None:
        prefix = self.schema_prefix
        create: dict[str, Any] = {"company_id": (F.Id | None, F.optional())}
        patch: dict[str, Any] = {}
        for name, f in self.write_fields.items():
            annotation, kwargs = F.input_type(f)
            if F.required_on_create(f):
                create[name] = (annotation, Field(**kwargs))
            else:
                create[name] = (annotation, F.optional(**kwargs))
            patch[name] = (annotation, F.optional(**kwargs))
        out: dict[str, Any] = {"id": (int, ...), "company_id": (int, ...),
                               "display_name": (str, ...)}
        for name, f in self.read_fields.items():
            out[name] = (F.output_type(f), ...)
        if self.lines is not None:
            if self.lines_writable:
                line_list = list[self.lines.item_in]
                create["lines"] = (line_list, F.optional(max_length=500))
                patch["lines"] = (line_list, F.optional(max_length=500))
            out["lines"] = (list[self.lines.item_out], ...)
        self.create_in = create_model(f"{prefix}Create", __base__=StrictIn, **create)
        self.patch_in = create_model(f"{prefix}Patch", __base__=StrictIn, **patch)
        self.out = create_model(f"{prefix}Out", __base__=Schema, **out)
        self.list_out = create_model(
            f"{prefix}List", __base__=Schema, count=(int, ...), limit=(int, ...),
            offset=(int, ...), items=(list[self.out], ...),
        )
        searched = ", ".join(self.search_fields)
        filters: dict[str, Any] = {
            "q": (F.Text | None, F.optional(max_length=200, description=f"Search in {searched}")),
            "company_id": (F.Id | None, F.optional()),
        }
        for name, f in self.filter_fields.items():
            if f.is_relation:
                filters[name] = (F.Id | None, F.optional())
            elif isinstance(f, models.BooleanField):
                filters[name] = (bool | None, F.optional())
            else:
                annotation, _ = F.input_type(f)
                filters[name] = (annotation | None, F.optional())
        filters["limit"] = (int, Field(50, ge=1, le=200))
        filters["offset"] = (int, Field(0, ge=0, le=10_000_000))
        self.filters = create_model(f"{prefix}Filters", __base__=Schema, **filters)


def _lines_spec(model: type[models.Model], services: Any | None) -> LinesSpec | None:
    """A reverse foreign key named `lines` makes a record type editable with its lines.

    Line items are the line model's editable columns, plus `id` (to keep an existing line)
    and `<model>_ids` for each many-to-many (`tax_ids`), as `sales.lines.write_lines` reads
    them."""
    try:
        relation = model._meta.get_field("lines")
    except Exception:
        return None
    if not getattr(relation, "one_to_many", False):
        return None
    line_model = relation.related_model
    parent_field = relation.field
    write: dict[str, models.Field] = {}
    read: dict[str, models.Field] = {}
    for f in line_model._meta.concrete_fields:
        if f.primary_key or f is parent_field or f.name == "company":
            continue
        read[F.api_name(f)] = f
        if f.editable:
            write[F.api_name(f)] = f
    many = {f"{f.related_model._meta.model_name}_ids": f for f in line_model._meta.many_to_many}
    prefix = line_model.__name__
    item_in_fields: dict[str, Any] = {
        "id": (F.Id | None, F.optional(description="An existing line to keep and update.")),
    }
    for name, f in write.items():
        # all optional: a line with an `id` changes only what it names; the app's service
        # asks new lines for their required fields
        annotation, kwargs = F.input_type(f)
        if F.required_on_create(f):
            kwargs["description"] = "Required for a new line."
        item_in_fields[name] = (annotation, F.optional(**kwargs))
    for name in many:
        item_in_fields[name] = (list[F.Id], F.optional(max_length=100))
    item_out_fields: dict[str, Any] = {"id": (int, ...)}
    item_out_fields.update({name: (F.output_type(f), ...) for name, f in read.items()})
    item_out_fields.update({name: (list[int], ...) for name in many})
    set_lines = getattr(services, "set_lines", None) if services is not None else None
    return LinesSpec(
        model=line_model, parent_field=parent_field, write_fields=write, read_fields=read,
        many_fields=many,
        item_in=create_model(f"{prefix}In", __base__=StrictIn, **item_in_fields),
        item_out=create_model(f"{prefix}Out", __base__=Schema, **item_out_fields),
        set_lines=set_lines,
    )


_SPECS: dict[str, RecordSpec] = {}


def spec_for(record_type: RecordType) -> RecordSpec:
    spec = _SPECS.get(record_type.key)
    if spec is None:
        spec = _SPECS[record_type.key] = RecordSpec.build(record_type)
    return spec
