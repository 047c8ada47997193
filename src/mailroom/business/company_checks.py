"""Cross-company checks for business records, called from each model's `clean()`.

Querysets keep users from *seeing* other companies' rows; these checks keep a record from
*pointing* at them (a customer id typed into the API, a form tampered with), so one company's
data can never leak into another company's record, template or email.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models


def same_company_errors(record: models.Model, *field_names: str) -> dict[str, str]:
    """Errors for related rows (by FK field name) that belong to another company."""
    errors: dict[str, str] = {}
    if record.company_id is None:
        return errors
    for name in field_names:
        if getattr(record, f"{name}_id") is None:
            continue
        related = getattr(record, name)
        if related.company_id != record.company_id:
            label = record._meta.get_field(name).verbose_name
            errors[name] = f"The {label} belongs to another company."
    return errors


def member_errors(record: models.Model, *field_names: str) -> dict[str, str]:
    """Errors for users (by FK field name) who do not work in the record's company."""
    errors: dict[str, str] = {}
    if record.company_id is None:
        return errors
    for name in field_names:
        if getattr(record, f"{name}_id") is None:
            continue
        user = getattr(record, name)
        if not user.is_superuser and record.company_id not in user.company_ids():
            label = record._meta.get_field(name).verbose_name
            errors[name] = f"The {label} does not work in this company."
    return errors


def check_company(record: models.Model, *, related: tuple[str, ...] = (),
                  users: tuple[str, ...] = ("user",), extra: dict | None = None) -> None:
    """Raise one ValidationError with every cross-company problem (plus `extra` errors)."""
    errors = dict(extra or {})
    errors.update(same_company_errors(record, *related))
    errors.update(member_errors(record, *users))
    if errors:
        raise ValidationError(errors)
