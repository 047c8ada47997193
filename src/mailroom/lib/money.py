"""Money arithmetic for quotation and invoice lines (no Django).

Amounts are `Decimal` and are rounded half-up to cents at exactly two places: each line's
untaxed subtotal, and each tax on each line. Document totals are sums of those rounded values,
so a printed quotation or invoice always adds up: total == untaxed + tax, to the cent, and
the same numbers come out whichever screen, API call or PDF computes them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CENT = Decimal("0.01")
HUNDRED = Decimal(100)
ZERO = Decimal("0.00")

NOT_PAID = "not_paid"
PARTIAL = "partial"
PAID = "paid"

Number = Decimal | int | str | float


def to_decimal(value: Number) -> Decimal:
    """A finite Decimal from an int, str, Decimal or float.

    Floats go through `repr` so 0.1 means 0.1 and not 0.1000000000000000055511151231257827.
    """
    if isinstance(value, bool):
        raise ValueError("A boolean is not an amount.")
    try:
        result = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, TypeError, ValueError) as exc:
        raise ValueError(f"{value!r} is not a number.") from exc
    if not result.is_finite():
        raise ValueError(f"{value!r} is not a finite number.")
    return result


def round_money(value: Number) -> Decimal:
    """Round half-up (away from zero on ties) to cents, as accountants expect."""
    return to_decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class LineAmounts:
    untaxed: Decimal
    tax: Decimal

    @property
    def total(self) -> Decimal:
        return self.untaxed + self.tax


@dataclass(frozen=True)
class Totals:
    untaxed: Decimal
    tax: Decimal
    total: Decimal


def line_amounts(
    quantity: Number,
    price_unit: Number,
    discount_percent: Number = 0,
    tax_percents: Iterable[Number] = (),
) -> LineAmounts:
    """The untaxed subtotal and the tax of one line.

    Each tax is computed on the discounted subtotal and rounded on its own, so a line with two
    taxes shows two amounts that each match the rate printed beside them.
    """
    discount = to_decimal(discount_percent)
    if not ZERO <= discount <= HUNDRED:
        raise ValueError("A discount is a percentage between 0 and 100.")
    untaxed = round_money(
        to_decimal(quantity) * to_decimal(price_unit) * (HUNDRED - discount) / HUNDRED
    )
    tax = sum((round_money(untaxed * to_decimal(pct) / HUNDRED) for pct in tax_percents), ZERO)
    return LineAmounts(untaxed=untaxed, tax=tax)


def document_totals(lines: Iterable[LineAmounts]) -> Totals:
    """Sum already-rounded lines; no further rounding happens, so nothing drifts."""
    untaxed = ZERO
    tax = ZERO
    for line in lines:
        untaxed += line.untaxed
        tax += line.tax
    return Totals(untaxed=untaxed, tax=tax, total=untaxed + tax)


def payment_state(total: Number, paid: Number) -> str:
    """"not_paid", "partial" or "paid" for an invoice of `total` with `paid` received.

    A zero (or negative) total owes nothing, so it counts as paid.
    """
    total_d = round_money(total)
    paid_d = round_money(paid)
    if paid_d >= total_d:
        return PAID
    if paid_d <= ZERO:
        return NOT_PAID
    return PARTIAL
