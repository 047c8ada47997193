"""Money, quantities and dates written the way the customer reads them (Babel).

A German customer reads "1.234,50 €" and "10.03.2026"; an American one "€1,234.50" and
"Mar 10, 2026". The locale is the customer's language, else the company's, so one company
sends each customer documents in their own conventions. Labels stay in English for now.
"""

from __future__ import annotations

import datetime
from decimal import Decimal

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal, format_percent

DEFAULT_LOCALE = "en_US"


def parse_locale(code: str | None) -> Locale | None:
    """A Babel locale from "de_DE", "de-DE" or "de"; None when Babel does not know it."""
    if not code:
        return None
    try:
        return Locale.parse(code.strip().replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        return None


def document_locale(record, lang: str | None = None) -> Locale:
    """`lang` if given and known, else the customer's language, else the company's."""
    partner = getattr(record, "partner", None)
    company = getattr(record, "company", None)
    for code in (lang, getattr(partner, "language", None), getattr(company, "language", None)):
        locale = parse_locale(code)
        if locale is not None:
            return locale
    return Locale.parse(DEFAULT_LOCALE)


def money(amount: Decimal | int | None, currency: str, locale: Locale) -> str:
    """Amounts are stored rounded to cents, so Babel only has to place separators and sign."""
    if amount is None:
        return ""
    return format_currency(amount, currency, locale=locale)


def quantity(value: Decimal | int | None, locale: Locale) -> str:
    """Quantities keep up to three decimals but print without trailing zeros ("3", "1,5")."""
    if value is None:
        return ""
    return format_decimal(value, format="#,##0.###", locale=locale)


def percent(value: Decimal | int | None, locale: Locale) -> str:
    if value is None:
        return ""
    return format_percent(Decimal(value) / 100, locale=locale, decimal_quantization=False)


def day(value: datetime.date | None, locale: Locale) -> str:
    if value is None:
        return ""
    return format_date(value, format="medium", locale=locale)
