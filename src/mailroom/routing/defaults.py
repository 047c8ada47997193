"""What an alias may preset on the records it creates — never anything of another company.

An alias's `defaults` are field values for new records. They can never set the company (under
any spelling: `company`, `company_id`), and every relation must point at a row the alias's own
company may use: a row of that company, or a user who belongs to it. A relation to a table
that belongs to no company is refused, since nothing proves it is the company's to use.
The same rule guards the records an alias appends to (force thread) or belongs to (parent).
"""

from __future__ import annotations

from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import models

from mailroom.core import record_types
from mailroom.core.models import Company, User


def is_company_field(field: models.Field) -> bool:
    return field.name == "company" or (field.is_relation and field.related_model is Company)


def usable_rows(model: type[models.Model], company_id: int) -> models.QuerySet | None:
    """The rows of `model` a record of `company_id` may point at; None if none may be."""
    if model is Company:
        return None
    if issubclass(model, User):
        return model.objects.filter(companies=company_id, is_active=True)
    try:
        field = model._meta.get_field("company")
    except FieldDoesNotExist:
        return None
    if not field.is_relation or field.related_model is not Company:
        return None
    return model._default_manager.filter(company_id=company_id)


def problems(record_type_key: str, company_id: int, defaults: Any, *,
             company_only: bool = False) -> list[str]:
    """Each reason `defaults` cannot be used by an alias of `company_id`; empty when fine.

    `company_only` keeps just the reasons that reach outside the company (the upgrade check
    leaves other mistakes, such as a wrong choice, to the alias's own test)."""
    if not isinstance(defaults, dict):
        return ['Give an object such as {"priority": "high"}.']
    try:
        record_type = record_types.get(record_type_key)
    except LookupError:
        return [f"Unknown record type {record_type_key!r}."]
    model = record_type.model
    errors: list[str] = []
    for name, value in defaults.items():
        try:
            field = model._meta.get_field(name)
        except FieldDoesNotExist:
            if not company_only:
                errors.append(f"{record_type.label} has no field {name!r}.")
            continue
        if is_company_field(field):
            errors.append(f"{name!r}: the company is always the alias's own.")
            continue
        if company_only and not field.is_relation:
            continue
        if not field.editable or field.primary_key or field.many_to_many or (
                field.is_relation and not field.concrete):
            errors.append(f"{name!r} cannot be set by an alias.")
            continue
        try:
            if field.is_relation:
                target = field.related_model
                rows = usable_rows(target, company_id)
                if rows is None:
                    raise ValidationError(f"a {target._meta.verbose_name} cannot be preset "
                                          f"by an alias")
                try:
                    found = rows.filter(pk=value).exists()
                except (TypeError, ValueError, OverflowError):
                    found = False
                if not found:
                    raise ValidationError(f"no {target._meta.verbose_name} with id {value!r} "
                                          f"in this company")
            else:
                field.clean(value, None)
        except ValidationError as exc:
            errors.append(f"{name}: {'; '.join(exc.messages)}")
    return errors


def record_problem(content_type_id: int | None, object_id: int | None,
                   company_id: int) -> str | None:
    """Why the record named by a content type and id is not the company's; None if it is."""
    if not content_type_id and not object_id:
        return None
    if not (content_type_id and object_id):
        return "Name both the type and the record."
    model = ContentType.objects.get_for_id(content_type_id).model_class()
    rows = usable_rows(model, company_id) if model is not None else None
    if rows is None or not rows.filter(pk=object_id).exists():
        return "No such record in this company."
    return None


def alias_problems(alias: Any, *, company_only: bool = False) -> list[str]:
    """Why a saved alias reaches outside its company (defaults, thread, parent); empty if not.

    Takes any row with the alias's columns, so the upgrade migration can pass its
    historical rows: aliases saved before this rule existed may hold such values."""
    reasons = problems(alias.record_type, alias.company_id, alias.defaults,
                       company_only=company_only)
    for label, ct, oid in (("thread", alias.thread_content_type_id, alias.thread_object_id),
                           ("parent", alias.parent_content_type_id, alias.parent_object_id)):
        problem = record_problem(ct, oid, alias.company_id)
        if problem:
            reasons.append(f"{label}: {problem}")
    return reasons
