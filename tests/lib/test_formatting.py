"""Babel helpers: money, numbers, percentages, dates and times in the recipient's language."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from babel import numbers

from mailroom.lib.formatting import (
    format_date,
    format_datetime,
    format_money,
    format_number,
    format_percent,
    format_time,
    language_name,
    normalize_locale,
    time_zone,
)

NBSP, NNBSP = "\xa0", "\u202f"


@pytest.mark.parametrize("value", [Decimal("1234.5"), 1234.5, "1234.50", " 1234.5 "])
def test_money_in_german_literally(value: object) -> None:
    assert format_money(value, "EUR", "de_DE") == f"1.234,50{NBSP}€"


def test_money_in_other_locales() -> None:
    assert format_money(Decimal("1234.5"), "EUR", "en_US") == "€1,234.50"
    assert format_money(Decimal("1234.5"), "USD", "en_US") == "$1,234.50"
    assert format_money(1234, "usd", "en-US") == "$1,234.00"
    # fr_FR groups with a narrow no-break space and puts the symbol after a no-break space.
    french = format_money(Decimal("1234.5"), "EUR", "fr_FR")
    assert french == numbers.format_currency(Decimal("1234.5"), "EUR", locale="fr_FR")
    assert french == f"1{NNBSP}234,50{NBSP}€"
    assert format_money(5, "JPY", "ja_JP") == "￥5"  # no minor unit


def test_money_needs_a_currency_code() -> None:
    with pytest.raises(ValueError, match="currency code"):
        format_money(1, "", "de_DE")
    with pytest.raises(ValueError, match="currency code"):
        format_money(1, "euro", "de_DE")


def test_numbers_and_percentages() -> None:
    assert format_number(1234.5678, "de_DE") == "1.234,568"
    assert format_number(1234.5, "de_DE", digits=2) == "1.234,50"
    assert format_number(1234.5, "en_US", digits=0) == "1,234"
    assert format_number(1234567, "en_IN", digits=2) == "12,34,567.00"  # local grouping
    assert format_number(0.1, "en_US") == "0.1"  # floats are taken as written, not binary
    assert format_percent(0.256, "en_US") == "26%"
    assert format_percent(0.256, "de_DE") == f"26{NBSP}%"
    assert format_percent(Decimal("0.2567"), "en_US", digits=1) == "25.7%"


@pytest.mark.parametrize("empty", [None, ""])
def test_empty_values_print_nothing(empty: None | str) -> None:
    assert format_money(empty, "EUR", "de_DE") == ""
    assert format_number(empty, "de_DE") == ""
    assert format_percent(empty, "de_DE") == ""
    assert format_date(empty, "de_DE") == ""
    assert format_datetime(empty, "de_DE") == ""
    assert format_time(empty, "de_DE") == ""


@pytest.mark.parametrize("bad", ["abc", True, [1], float("nan"), "1e5000", object()])
def test_what_is_not_a_number_says_so(bad: object) -> None:
    with pytest.raises(ValueError, match="number|too large"):
        format_number(bad, "en_US")  # type: ignore[arg-type]


def test_digits_are_bounded() -> None:
    with pytest.raises(ValueError, match="digits"):
        format_number(1, "en_US", digits=10**6)
    with pytest.raises(ValueError, match="digits"):
        format_percent(1, "en_US", digits=-1)


def test_dates_per_locale() -> None:
    day = dt.date(2026, 11, 24)
    assert format_date(day, "de_DE") == "24.11.2026"
    assert format_date(day, "de_DE", "short") == "24.11.26"  # CLDR's short German date
    assert format_date(day, "de_DE", "long") == "24. November 2026"
    assert format_date(day, "en_US") == "Nov 24, 2026"
    assert format_date(day, "en_US", "full") == "Tuesday, November 24, 2026"
    assert format_date("2026-11-24", "fr_FR", "short") == "24/11/2026"
    assert format_date(day, "de_DE", "dd.MM.yyyy") == "24.11.2026"  # a CLDR pattern


def test_datetimes_move_to_the_recipients_time_zone() -> None:
    late = dt.datetime(2026, 11, 24, 23, 30, tzinfo=dt.UTC)
    assert format_datetime(late, "de_DE", "Europe/Berlin") == "25.11.2026, 00:30:00"
    assert format_date(late, "de_DE", timezone="Europe/Berlin") == "25.11.2026"
    assert format_date(late, "de_DE") == "24.11.2026"
    assert format_datetime("2026-11-24T13:05:00Z", "de_DE", "Europe/Berlin", "short") == \
        "24.11.26, 14:05"
    # A naive datetime is taken as UTC (as Babel does); a plain date as midnight there.
    assert format_datetime(dt.datetime(2026, 11, 24, 13, 5), "de_DE", "Europe/Berlin") == \
        "24.11.2026, 14:05:00"
    assert format_datetime(dt.date(2026, 11, 24), "en_US", "America/New_York", "short") == \
        f"11/24/26, 12:00{NNBSP}AM"


def test_times() -> None:
    moment = dt.datetime(2026, 11, 24, 13, 5, tzinfo=dt.UTC)
    assert format_time(moment, "de_DE", "Europe/Berlin", "short") == "14:05"
    assert format_time(moment, "en_US", "America/New_York", "short") == f"8:05{NNBSP}AM"
    assert format_time(dt.time(14, 5), "de_DE") == "14:05:00"
    assert format_time("14:05", "de_DE", format="short") == "14:05"
    with pytest.raises(ValueError, match="without a time"):
        format_time(dt.date(2026, 1, 1), "de_DE")


def test_bad_dates_and_zones() -> None:
    with pytest.raises(ValueError, match="not a date"):
        format_date("24/11/2026", "de_DE")
    with pytest.raises(ValueError, match="time zone"):
        format_datetime(dt.datetime(2026, 1, 1), "de_DE", "Mars/Olympus")
    with pytest.raises(ValueError, match="format"):
        format_date(dt.date(2026, 1, 1), "de_DE", "y" * 1000)
    assert time_zone("UTC") is dt.UTC


@pytest.mark.parametrize(
    ("value", "expected"),
    [("de", "de"), ("de_DE", "de_DE"), ("de-DE", "de_DE"), ("DE_de", "de_DE"),
     ("fr_BE", "fr_BE"), ("fr-be", "fr_BE"), ("pt_BR", "pt_BR"), ("zh-Hant-TW", "zh_Hant_TW"),
     ("de_DE.UTF-8", "de_DE"), ("en_US@posix", "en_US"), ("xx", "en_US"), ("klingon", "en_US"),
     ("", "en_US"), (None, "en_US"), ("und", "en_US"), ("C", "en_US")],
)
def test_normalize_locale(value: str | None, expected: str) -> None:
    assert normalize_locale(value) == expected


def test_normalize_locale_fallback() -> None:
    assert normalize_locale("xx", fallback="de_DE") == "de_DE"


def test_unknown_locale_formats_in_english() -> None:
    assert format_money(1234.5, "EUR", "xx_XX") == "€1,234.50"


def test_language_names() -> None:
    assert language_name("de") == "German"
    assert language_name("de_DE") == "German"
    assert language_name("fr", in_locale="de") == "Französisch"
    assert language_name("de_CH", in_locale="fr") == "allemand"
    assert language_name("zz") == "zz"
