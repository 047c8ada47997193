"""Pydantic types derived from Django model fields, strict enough that nothing a client sends
reaches the database in a shape it would refuse (which would be a 500, not a 4xx).

- text: no NUL, valid Unicode; single-line fields also refuse CR/LF (header injection)
- integers within the column's range and the field's Min/MaxValueValidators
- decimals within max_digits/decimal_places, no NaN/Infinity
- datetimes timezone-aware and representable in UTC
- foreign keys as `<name>_id` positive 64-bit ints
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from typing import Annotated, Any, Literal

from django.core import validators as dj_validators
from django.db import models
from pydantic import AfterValidator, Field
from pydantic.fields import FieldInfo

MAX_ID = 2**63 - 1


def check_text(value: str) -> str:
    if "\x00" in value:
        raise ValueError("Text cannot contain NUL characters.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("Text must be valid Unicode.") from None
    return value


def check_line(value: str) -> str:
    check_text(value)
    if "\r" in value or "\n" in value:
        raise ValueError("This field must be a single line (no line breaks).")
    return value


def check_datetime(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    try:
        value.astimezone(dt.UTC)
    except (OverflowError, ValueError):
        raise ValueError("Date and time out of range.") from None
    return value


def check_json(value: Any) -> Any:
    if isinstance(value, str):
        check_text(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(str(key))
            check_json(item)
    elif isinstance(value, list):
        for item in value:
            check_json(item)
    return value


Text = Annotated[str, AfterValidator(check_text)]
Line = Annotated[str, AfterValidator(check_line)]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]

_INT_RANGES = {
    "SmallIntegerField": (-(2**15), 2**15 - 1),
    "PositiveSmallIntegerField": (0, 2**15 - 1),
    "IntegerField": (-(2**31), 2**31 - 1),
    "PositiveIntegerField": (0, 2**31 - 1),
    "BigIntegerField": (-(2**63), 2**63 - 1),
    "PositiveBigIntegerField": (0, 2**63 - 1),
    "AutoField": (1, 2**31 - 1),
    "BigAutoField": (1, 2**63 - 1),
    "SmallAutoField": (1, 2**15 - 1),
}


def _validator_bounds(field: models.Field) -> dict[str, Any]:
    bounds: dict[str, Any] = {}
    for validator in field.validators:
        limit = getattr(validator, "limit_value", None)
        if callable(limit) or limit is None:
            continue
        if isinstance(validator, dj_validators.MinValueValidator):
            bounds["ge"] = max(limit, bounds.get("ge", limit))
        elif isinstance(validator, dj_validators.MaxValueValidator):
            bounds["le"] = min(limit, bounds.get("le", limit))
    return bounds


def api_name(field: models.Field) -> str:
    """The name the API uses: foreign keys are `<name>_id`."""
    return field.attname


def is_single_line(field: models.Field) -> bool:
    return isinstance(field, models.CharField)


def choice_values(field: models.Field) -> list[Any]:
    values = [value for value, _label in field.flatchoices]
    if field.blank and "" not in values and isinstance(field, models.CharField):
        values.append("")
    return values


def input_type(field: models.Field) -> tuple[Any, dict[str, Any]]:
    """(annotation, Field kwargs) for writing `field` through the API."""
    kwargs: dict[str, Any] = {}
    if field.is_relation:
        annotation: Any = Id
    elif field.choices:
        annotation = Literal[tuple(choice_values(field))]
    else:
        internal = field.get_internal_type()
        if isinstance(field, models.BooleanField):
            annotation = bool
        elif internal in _INT_RANGES:
            low, high = _INT_RANGES[internal]
            bounds = _validator_bounds(field)
            kwargs["ge"] = max(low, bounds.get("ge", low))
            kwargs["le"] = min(high, bounds.get("le", high))
            annotation = int
        elif isinstance(field, models.DecimalField):
            annotation = decimal.Decimal
            kwargs.update(max_digits=field.max_digits, decimal_places=field.decimal_places,
                          allow_inf_nan=False, **_validator_bounds(field))
        elif isinstance(field, models.FloatField):
            annotation = float
            kwargs.update(allow_inf_nan=False, **_validator_bounds(field))
        elif isinstance(field, models.DateTimeField):
            annotation = Annotated[dt.datetime, AfterValidator(check_datetime)]
        elif isinstance(field, models.DateField):
            annotation = dt.date
        elif isinstance(field, models.TimeField):
            annotation = dt.time
        elif isinstance(field, models.UUIDField):
            annotation = uuid.UUID
        elif isinstance(field, models.JSONField):
            annotation = Annotated[Any, AfterValidator(check_json)]
        elif is_single_line(field):
            annotation = Line
        else:
            annotation = Text
        if isinstance(field, (models.CharField, models.TextField)) and field.max_length:
            kwargs["max_length"] = field.max_length
    if field.null:
        annotation = annotation | None
    return annotation, kwargs


def output_type(field: models.Field) -> Any:
    """A lenient type for reading: rows may hold values older rules would now refuse."""
    if field.is_relation:
        annotation: Any = int
    elif isinstance(field, models.BooleanField):
        annotation = bool
    elif field.get_internal_type() in _INT_RANGES:
        annotation = int
    elif isinstance(field, models.DecimalField):
        annotation = decimal.Decimal
    elif isinstance(field, models.FloatField):
        annotation = float
    elif isinstance(field, models.DateTimeField):
        annotation = dt.datetime
    elif isinstance(field, models.DateField):
        annotation = dt.date
    elif isinstance(field, models.TimeField):
        annotation = dt.time
    elif isinstance(field, models.UUIDField):
        annotation = uuid.UUID
    elif isinstance(field, models.JSONField):
        annotation = Any
    else:
        annotation = str
    if field.null or field.is_relation:
        annotation = annotation | None
    return annotation


def _drop_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def optional(**kwargs: Any) -> FieldInfo:
    """An optional input field: left out, the model's own default applies (we dump with
    exclude_unset); `null` is refused unless the column is nullable."""
    return Field(default=None, json_schema_extra=_drop_default, **kwargs)


def required_on_create(field: models.Field) -> bool:
    return not (field.has_default() or field.blank or field.null)
