"""Integer lookups that answer "no rows" for values no row can hold, instead of crashing.

Django already does this for `exact`, `gt`, `lt`… on integer columns (IntegerFieldOverflow):
an id past 2**63 - 1 matches nothing. It does not for `__in` (the admin's selected rows,
`ModelMultipleChoiceField`, the autocomplete widget re-rendering a refused form all filter
`pk__in=<raw strings>`), nor for lookups through a foreign key (`?user__exact=` in a list
filter): there SQLite raises OverflowError and a non-number raises ValueError — a 500 for a
hostile query string. These replacements drop such values (an empty list matches nothing)
and compare out-of-range foreign-key values the way Django compares integer columns.

Registered once by `CoreConfig.ready()`; they change nothing for values a row can hold.
"""

from __future__ import annotations

from django.core.exceptions import EmptyResultSet, FullResultSet
from django.db.models import ForeignObject, IntegerField, Model
from django.db.models.fields.related_lookups import (
    RelatedExact,
    RelatedGreaterThan,
    RelatedGreaterThanOrEqual,
    RelatedIn,
    RelatedLessThan,
    RelatedLessThanOrEqual,
)
from django.db.models.lookups import In


def _int_range(field, connection) -> tuple[int | None, int | None]:
    target = getattr(field, "target_field", None) or field
    try:
        return connection.ops.integer_field_range(target.get_internal_type())
    except (KeyError, AttributeError):
        return None, None


def _in_range(value, low: int | None, high: int | None) -> bool:
    if not isinstance(value, int):
        return True
    return (low is None or value >= low) and (high is None or value <= high)


class _DropsUnusableValues:
    """`__in` on an integer column: values that are not integers, or out of the column's
    range, are left out of the list (no row has them)."""

    def get_prep_lookup(self):
        if self.rhs_is_direct_value() and not hasattr(self.rhs, "resolve_expression"):
            kept = []
            for value in self.rhs:
                try:
                    self._prep_one(value)
                except (ValueError, TypeError):
                    continue
                kept.append(value)
            self.rhs = kept
        return super().get_prep_lookup()

    def _prep_one(self, value) -> None:
        field = self.lhs.output_field
        target = getattr(field, "target_field", None) or field
        if value is not None and not isinstance(value, Model) and not hasattr(
                value, "resolve_expression"):
            target.get_prep_value(value)

    def process_rhs(self, compiler, connection):
        if self.rhs_is_direct_value():
            low, high = _int_range(self.lhs.output_field, connection)
            self.rhs = [v for v in self.rhs if _in_range(v, low, high)]
        return super().process_rhs(compiler, connection)


class IntegerIn(_DropsUnusableValues, In):
    pass


class RelatedIntegerIn(_DropsUnusableValues, RelatedIn):
    pass


class _RelatedOverflow:
    """A foreign key compared with a value past its column's range: like Django's
    IntegerFieldOverflow for the column itself."""

    underflow_exception: type[Exception] = EmptyResultSet
    overflow_exception: type[Exception] = EmptyResultSet

    def process_rhs(self, compiler, connection):
        if isinstance(self.rhs, int):
            low, high = _int_range(self.lhs.output_field, connection)
            if low is not None and self.rhs < low:
                raise self.underflow_exception
            if high is not None and self.rhs > high:
                raise self.overflow_exception
        return super().process_rhs(compiler, connection)


class SafeRelatedExact(_RelatedOverflow, RelatedExact):
    pass


class SafeRelatedGreaterThan(_RelatedOverflow, RelatedGreaterThan):
    underflow_exception = FullResultSet


class SafeRelatedGreaterThanOrEqual(_RelatedOverflow, RelatedGreaterThanOrEqual):
    underflow_exception = FullResultSet


class SafeRelatedLessThan(_RelatedOverflow, RelatedLessThan):
    overflow_exception = FullResultSet


class SafeRelatedLessThanOrEqual(_RelatedOverflow, RelatedLessThanOrEqual):
    overflow_exception = FullResultSet


def register() -> None:
    IntegerField.register_lookup(IntegerIn)
    for lookup in (RelatedIntegerIn, SafeRelatedExact, SafeRelatedGreaterThan,
                   SafeRelatedGreaterThanOrEqual, SafeRelatedLessThan,
                   SafeRelatedLessThanOrEqual):
        ForeignObject.register_lookup(lookup)
