"""Reading and writing records for the API: scoping, company and reference checks, and the
hand-off to the app's service (or `chatter.services.save_record`).

Rows of companies the caller does not belong to are invisible: every lookup goes through
`visible()`, so they answer 404 exactly like rows that do not exist.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Q
from django.http import Http404

from mailroom.api.errors import FieldErrors, django_errors, field_error
from mailroom.api.specs import RecordSpec, accepts
from mailroom.chatter.services import delete_record, save_record
from mailroom.core.models import Company, User


def visible(model: type[models.Model], user: User) -> models.QuerySet:
    queryset = model._default_manager.all()
    if hasattr(queryset, "for_user"):
        return queryset.for_user(user)
    if user.is_superuser:
        return queryset
    return queryset.filter(company_id__in=user.company_ids())


def get_visible(model: type[models.Model], user: User, pk: int) -> models.Model:
    record = visible(model, user).filter(pk=pk).first()
    if record is None:
        raise Http404("No such record.")
    return record


def company_for_create(user: User, company_id: int | None) -> int:
    """The company a new record goes to: the one asked for, else the user's current one."""
    ids = user.company_ids()
    if company_id is None:
        company_id = user.current_company_id if user.current_company_id in ids else (
            ids[0] if ids else None)
        if company_id is None:
            raise field_error("company_id", "You belong to no company; send company_id.")
    if company_id in ids:
        return company_id
    if user.is_superuser and Company.objects.filter(pk=company_id).exists():
        return company_id
    raise field_error("company_id", "You do not belong to that company.")


def reference_allowed(related: type[models.Model], pk: int, company_id: int) -> bool:
    """May a record of `company_id` point at `related` row `pk`? Only at rows of the same
    company (users: members of it). The answer is the same for a row of another company
    and for no row at all, so ids of other companies cannot be probed."""
    queryset = related._default_manager.filter(pk=pk)
    if related is get_user_model():
        queryset = queryset.filter(companies=company_id)
    else:
        names = {f.name: f for f in related._meta.get_fields()}
        company = names.get("company")
        companies = names.get("companies")
        if company is not None and company.concrete:
            scope = Q(company_id=company_id)
            if company.null:
                scope |= Q(company__isnull=True)
            queryset = queryset.filter(scope)
        elif companies is not None and companies.many_to_many:
            queryset = queryset.filter(companies=company_id)
    return queryset.exists()


def check_references(fk_fields: dict[str, models.Field], data: dict[str, Any], company_id: int,
                     prefix: str = "") -> None:
    for name, f in fk_fields.items():
        value = data.get(name)
        if value is None:
            continue
        if not reference_allowed(f.related_model, value, company_id):
            label = f.related_model._meta.verbose_name
            raise field_error(f"{prefix}{name}", f"No {label} with id {value} in this company.")


def _assign(record: models.Model, fields: dict[str, models.Field], data: dict[str, Any]) -> None:
    for name, value in data.items():
        setattr(record, fields[name].attname, value)


def _rename(spec: RecordSpec) -> dict[str, str]:
    """Model field names in ValidationErrors -> the API's names (`partner` -> `partner_id`)."""
    return {f.name: name for name, f in spec.write_fields.items() if f.name != name}


def _save(spec: RecordSpec, record: models.Model, user: User, lines: list[dict] | None) -> None:
    with transaction.atomic():
        if spec.save_fn is not None:
            kwargs: dict[str, Any] = {"actor": user}
            if lines is not None and accepts(spec.save_fn, "lines"):
                kwargs["lines"] = lines
                lines = None
            spec.save_fn(record, **kwargs)
        else:
            save_record(record, actor=user)
        if lines is not None:
            spec.lines.set_lines(record, lines, actor=user)


def _validated_lines(spec: RecordSpec, payload_lines: list | None, company_id: int
                     ) -> list[dict] | None:
    if payload_lines is None:
        return None
    fk_fields = {n: f for n, f in spec.lines.write_fields.items() if f.is_relation}
    lines = []
    for index, line in enumerate(payload_lines):
        data = line.model_dump(exclude_unset=True)
        if data.get("id", 0) is None:
            del data["id"]
        check_references(fk_fields, data, company_id, prefix=f"lines.{index}.")
        for name, f in spec.lines.many_fields.items():
            for pk in data.get(name) or ():
                if not reference_allowed(f.related_model, pk, company_id):
                    label = f.related_model._meta.verbose_name
                    raise field_error(f"lines.{index}.{name}",
                                      f"No {label} with id {pk} in this company.")
        lines.append(data)
    return lines


def create(spec: RecordSpec, user: User, payload) -> models.Model:
    data = payload.model_dump(exclude_unset=True)
    payload_lines = getattr(payload, "lines", None) if "lines" in data else None
    data.pop("lines", None)
    company_id = company_for_create(user, data.pop("company_id", None))
    check_references(spec.fk_fields, data, company_id)
    lines = _validated_lines(spec, payload_lines, company_id) if spec.lines else None
    record = spec.model(company_id=company_id)
    _assign(record, spec.write_fields, data)
    try:
        _save(spec, record, user, lines)
    except ValidationError as exc:
        raise FieldErrors(django_errors(exc, _rename(spec))) from exc
    return record


def update(spec: RecordSpec, user: User, record: models.Model, payload) -> models.Model:
    data = payload.model_dump(exclude_unset=True)
    payload_lines = getattr(payload, "lines", None) if "lines" in data else None
    data.pop("lines", None)
    check_references(spec.fk_fields, data, record.company_id)
    lines = _validated_lines(spec, payload_lines, record.company_id) if spec.lines else None
    _assign(record, spec.write_fields, data)
    try:
        _save(spec, record, user, lines)
    except ValidationError as exc:
        raise FieldErrors(django_errors(exc, _rename(spec))) from exc
    return record


def delete(spec: RecordSpec, user: User, record: models.Model) -> None:
    if spec.delete_fn is not None:
        spec.delete_fn(record, actor=user)
    else:
        delete_record(record, actor=user)


def _plain(f: models.Field, value: Any) -> Any:
    if value is not None and isinstance(f, models.CharField) and not isinstance(value, str):
        return str(value)  # CountryField and friends
    return value


def line_out(spec: RecordSpec, line: models.Model) -> dict[str, Any]:
    data = {"id": line.pk}
    for name, f in spec.lines.read_fields.items():
        data[name] = _plain(f, getattr(line, f.attname))
    for name, f in spec.lines.many_fields.items():
        data[name] = [related.pk for related in getattr(line, f.name).all()]
    return data


def line_prefetch(spec: RecordSpec) -> list[str]:
    if spec.lines is None:
        return []
    return ["lines", *(f"lines__{f.name}" for f in spec.lines.many_fields.values())]


def record_out(spec: RecordSpec, record: models.Model) -> dict[str, Any]:
    data: dict[str, Any] = {"id": record.pk, "company_id": record.company_id,
                            "display_name": str(record)}
    for name, f in spec.read_fields.items():
        data[name] = _plain(f, getattr(record, f.attname))
    if spec.lines is not None:
        data["lines"] = [line_out(spec, line) for line in record.lines.all()]
    return data
