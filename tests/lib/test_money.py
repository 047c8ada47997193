"""The pure money math behind quotations and invoices (no database)."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailroom.lib import money

D = Decimal


def test_round_money_is_half_up_and_symmetric():
    assert money.round_money(D("2.675")) == D("2.68")  # float 2.675 would round down
    assert money.round_money(D("2.665")) == D("2.67")
    assert money.round_money(D("-2.665")) == D("-2.67")
    assert money.round_money(D("2.664999")) == D("2.66")
    assert money.round_money(0.1 + 0.2) == D("0.30")


def test_to_decimal_refuses_what_is_not_an_amount():
    for bad in ("abc", "NaN", "Infinity", float("nan"), True, None):
        with pytest.raises(ValueError):
            money.to_decimal(bad)
    assert money.to_decimal(0.1) == D("0.1")


def test_line_with_discount_and_two_taxes():
    line = money.line_amounts(D("3"), D("19.99"), D("10"), [D("20"), D("5.5")])
    assert line.untaxed == D("53.97")  # 59.97 * 0.9 = 53.973
    assert line.tax == D("10.79") + D("2.97")  # each tax rounded on its own
    assert line.total == D("67.73")


def test_each_tax_is_rounded_on_its_own():
    # 0.125 of tax twice would round to 0.25 summed first; per tax it is 0.13 + 0.13.
    line = money.line_amounts(1, D("1.25"), 0, [10, 10])
    assert line.tax == D("0.26")


def test_discount_must_be_a_percentage():
    with pytest.raises(ValueError):
        money.line_amounts(1, 10, 101)
    with pytest.raises(ValueError):
        money.line_amounts(1, 10, -1)
    assert money.line_amounts(2, 10, 100, [20]).total == D("0.00")


def test_document_totals_sum_rounded_lines():
    lines = [money.line_amounts(1, D("0.333"), 0, [20]) for _ in range(3)]
    totals = money.document_totals(lines)
    assert totals.untaxed == D("0.99")  # not round(0.999) == 1.00
    assert totals.tax == D("0.21")
    assert totals.total == D("1.20")
    assert money.document_totals([]) == money.Totals(D("0.00"), D("0.00"), D("0.00"))


def test_payment_state():
    assert money.payment_state(100, 0) == money.NOT_PAID
    assert money.payment_state(100, D("0.01")) == money.PARTIAL
    assert money.payment_state(100, D("99.99")) == money.PARTIAL
    assert money.payment_state(100, 100) == money.PAID
    assert money.payment_state(0, 0) == money.PAID


amounts = st.decimals(min_value=D("-100000"), max_value=D("100000"), places=2,
                      allow_nan=False, allow_infinity=False)
quantities = st.decimals(min_value=D("0"), max_value=D("10000"), places=3,
                         allow_nan=False, allow_infinity=False)
percents = st.decimals(min_value=D("0"), max_value=D("100"), places=2,
                       allow_nan=False, allow_infinity=False)
lines = st.tuples(quantities, amounts, percents, st.lists(percents, max_size=3))


@given(st.lists(lines, max_size=12))
def test_total_is_untaxed_plus_tax_in_cents(raw_lines):
    computed = [money.line_amounts(q, p, d, taxes) for q, p, d, taxes in raw_lines]
    totals = money.document_totals(computed)
    assert totals.total == totals.untaxed + totals.tax
    for value in (totals.untaxed, totals.tax, totals.total):
        assert value.as_tuple().exponent == -2
    for line in computed:
        assert line.untaxed.as_tuple().exponent == -2
        assert line.tax.as_tuple().exponent == -2
    assert totals.untaxed == sum((line.untaxed for line in computed), D("0.00"))


@given(amounts)
def test_round_money_is_idempotent(value):
    once = money.round_money(value)
    assert money.round_money(once) == once
    assert abs(once - value) <= D("0.005")
