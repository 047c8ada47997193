"""Numbers, money and dates in the recipient's language (Babel, no Django).

Templates are rendered for one recipient at a time, in that recipient's language and time zone,
so every helper takes the locale (and time zone) as an argument instead of reading a global
setting: renders run concurrently in threads, each for a different person.

Inputs are what a plain-data template context holds: Decimal, int, float, numeric strings,
date, datetime and ISO 8601 strings. ``None`` and ``""`` format as ``""`` so an empty field
prints nothing rather than "None". Anything else raises ``ValueError`` with a sentence a user
can act on; the template sandbox turns it into a template error naming the line.

Babel parses locale data once per process; the ``Locale`` objects and derived number patterns
are cached here, so a call costs a few microseconds (10,000 recipients stay cheap). Sizes are
bounded (digits, exponents, pattern length) because template authors choose the arguments.

Documents (quotation and invoice PDFs) use the same module for values read from the database:
:func:`first_locale` picks the customer's or the company's language, and :func:`format_amount`,
:func:`format_quantity` and :func:`format_rate` print stored amounts, quantities and tax or
discount rates. They never refuse a stored value (an odd currency code is printed as stored):
a document must always print.
"""

from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from babel import dates as _dates
from babel import numbers as _numbers

__all__ = [
    "first_locale",
    "format_amount",
    "format_date",
    "format_datetime",
    "format_money",
    "format_number",
    "format_percent",
    "format_quantity",
    "format_rate",
    "format_time",
    "language_name",
    "normalize_locale",
    "time_zone",
]

_NAMED_FORMATS = frozenset({"short", "medium", "long", "full"})
_MAX_DIGITS = 20  # fraction digits a template may ask for
_MAX_EXPONENT = 1000  # |adjusted exponent| of a number we agree to spell out in full
_MAX_PATTERN = 100  # characters in a custom CLDR date pattern

Number = Decimal | int | float | str | None
DateLike = dt.date | str | None


def normalize_locale(value: str | None, fallback: str = "en_US") -> str:
    """Babel's canonical identifier for ``value`` ("de-DE" -> "de_DE"), or ``fallback``.

    Accepts POSIX spellings too ("de_DE.UTF-8", "de_DE@euro"): partners' language fields come
    from many sources and an unknown language must never stop a mail from being rendered.
    """
    return _normalize(value or "", fallback)


@lru_cache(maxsize=1024)
def _normalize(value: str, fallback: str) -> str:
    code = value.strip().split(".", 1)[0].split("@", 1)[0]
    if not code or code.lower() in {"und", "c", "posix"}:
        return fallback
    try:
        return str(Locale.parse(code, sep="-" if "-" in code else "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        return fallback


def first_locale(*codes: str | None, fallback: str = "en_US") -> str:
    """The first of ``codes`` that names a known language, normalized, else ``fallback``.

    ``first_locale(lang, partner.language, company.language)``: the customer's conventions if
    Babel knows their language, else the company's.
    """
    for code in codes:
        normalized = normalize_locale(code, fallback="")
        if normalized:
            return normalized
    return fallback


@lru_cache(maxsize=256)
def _locale(code: str) -> Locale:
    return Locale.parse(normalize_locale(code))


@lru_cache(maxsize=64)
def time_zone(name: str) -> dt.tzinfo:
    """The tzinfo for an IANA name (cached); ValueError if unknown."""
    if name in {"UTC", "utc", "Etc/UTC", ""}:
        return dt.UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{name!r} is not a known time zone.") from exc


def language_name(code: str, in_locale: str = "en") -> str:
    """The language's name in ``in_locale`` ("de_DE" -> "German"); the code itself if unknown."""
    normalized = normalize_locale(code, fallback="")
    if not normalized:
        return code
    return _locale(normalized).get_language_name(_locale(in_locale)) or code


def _to_decimal(value: Number) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number.")
    try:
        if isinstance(value, Decimal):
            number = value
        elif isinstance(value, float):
            number = Decimal(repr(value))
        elif isinstance(value, int | str):
            number = Decimal(value.strip() if isinstance(value, str) else value)
        else:
            raise TypeError
    except (InvalidOperation, TypeError, ValueError):
        raise ValueError(f"{_short(value)} is not a number.") from None
    if not number.is_finite():
        raise ValueError(f"{_short(value)} is not a finite number.")
    if number and abs(number.adjusted()) > _MAX_EXPONENT:
        raise ValueError(f"{_short(value)} is too large to print.")
    return number


def _short(value: object) -> str:
    text = repr(value) if isinstance(value, str) else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


def _check_digits(digits: int | None) -> int | None:
    if digits is None:
        return None
    if isinstance(digits, bool) or not isinstance(digits, int) or not 0 <= digits <= _MAX_DIGITS:
        raise ValueError(f"digits must be a whole number from 0 to {_MAX_DIGITS}.")
    return digits


@lru_cache(maxsize=512)
def _fixed_pattern(code: str, kind: str, digits: int) -> _numbers.NumberPattern:
    """The locale's own decimal/percent pattern with exactly ``digits`` fraction digits.

    Copying the locale pattern (rather than writing "#,##0.00") keeps local grouping rules
    such as en_IN's 12,34,567.
    """
    locale = _locale(code)
    formats = locale.decimal_formats if kind == "decimal" else locale.percent_formats
    pattern = copy.copy(formats[None])
    pattern.frac_prec = (digits, digits)
    return pattern


def format_money(value: Number, currency: str, locale: str) -> str:
    """``1234.5, "EUR", "de_DE"`` -> "1.234,50 €" (with the no-break space CLDR uses)."""
    number = _to_decimal(value)
    if number is None:
        return ""
    if not currency:
        raise ValueError("A currency code such as 'EUR' is needed.")
    code = currency.strip().upper() if isinstance(currency, str) else ""
    if not (len(code) == 3 and code.isascii() and code.isalpha()):
        raise ValueError(f"{_short(currency)} is not a currency code such as 'EUR'.")
    return _numbers.format_currency(number, code, locale=_locale(locale))


def format_number(value: Number, locale: str, digits: int | None = None) -> str:
    """Grouped decimal number; ``digits`` fixes the fraction digits, else up to three."""
    number = _to_decimal(value)
    if number is None:
        return ""
    fixed = _check_digits(digits)
    if fixed is None:
        return _numbers.format_decimal(number, locale=_locale(locale))
    return _fixed_pattern(normalize_locale(locale), "decimal", fixed).apply(number, _locale(locale))


def format_percent(value: Number, locale: str, digits: int | None = None) -> str:
    """``0.256`` -> "26%" (en_US) / "26 %" (de_DE); ``digits`` adds fraction digits."""
    number = _to_decimal(value)
    if number is None:
        return ""
    fixed = _check_digits(digits)
    if fixed is None:
        return _numbers.format_percent(number, locale=_locale(locale))
    return _fixed_pattern(normalize_locale(locale), "percent", fixed).apply(number, _locale(locale))


def _check_format(format: str) -> str:
    if not isinstance(format, str) or not format or len(format) > _MAX_PATTERN:
        raise ValueError(
            "format must be 'short', 'medium', 'long', 'full' or a short pattern "
            "such as 'dd.MM.yyyy'."
        )
    return format


def _parse(value: DateLike | dt.time) -> dt.date | dt.time | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.date | dt.time):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) <= 10:
                return dt.date.fromisoformat(text)
            return dt.datetime.fromisoformat(text)
        except ValueError:
            pass
        try:
            return dt.time.fromisoformat(text)
        except ValueError:
            pass
    raise ValueError(f"{_short(value)} is not a date.")


def _in_zone(value: dt.datetime, timezone: str) -> dt.datetime:
    """Aware datetimes are converted; naive ones are taken as UTC, as Babel does."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    return aware.astimezone(time_zone(timezone))


def format_date(
    value: DateLike, locale: str, format: str = "medium", *, timezone: str | None = None
) -> str:
    """A date in the locale's style: de_DE medium "24.11.2026", short "24.11.26".

    A datetime is first moved to ``timezone`` (when given) so a mail sent at 23:30 UTC to
    someone in Berlin shows their date, not London's.
    """
    parsed = _parse(value)
    if parsed is None:
        return ""
    if isinstance(parsed, dt.time):
        raise ValueError(f"{_short(value)} is a time, not a date.")
    if isinstance(parsed, dt.datetime):
        parsed = (_in_zone(parsed, timezone) if timezone else parsed).date()
    return _dates.format_date(parsed, _check_format(format), locale=_locale(locale))


def format_datetime(
    value: DateLike, locale: str, timezone: str = "UTC", format: str = "medium"
) -> str:
    """Date and time in ``timezone`` (a plain date counts as midnight there)."""
    parsed = _parse(value)
    if parsed is None:
        return ""
    if isinstance(parsed, dt.time):
        raise ValueError(f"{_short(value)} is a time, not a date.")
    zone = time_zone(timezone)
    if isinstance(parsed, dt.datetime):
        moment = _in_zone(parsed, timezone)
    else:
        moment = dt.datetime.combine(parsed, dt.time(), tzinfo=zone)
    return _dates.format_datetime(
        moment, _check_format(format), tzinfo=zone, locale=_locale(locale)
    )


def format_time(
    value: DateLike | dt.time, locale: str, timezone: str = "UTC", format: str = "medium"
) -> str:
    """The time of day in ``timezone``; a bare ``time`` value is printed as given."""
    parsed = _parse(value)
    if parsed is None:
        return ""
    if isinstance(parsed, dt.datetime):
        moment: dt.time | dt.datetime = _in_zone(parsed, timezone)
        zone: dt.tzinfo | None = time_zone(timezone)
    elif isinstance(parsed, dt.time):
        moment, zone = parsed.replace(tzinfo=None), None
    else:
        raise ValueError(f"{_short(value)} is a date without a time.")
    return _dates.format_time(moment, _check_format(format), tzinfo=zone, locale=_locale(locale))


def format_amount(amount: Decimal | int | None, currency: str, locale: str) -> str:
    """A stored amount in its stored currency: ``Decimal("1234.50"), "EUR", "de_DE"`` ->
    "1.234,50 €". Amounts are stored rounded to cents, so Babel only places separators and
    sign; the currency is not checked (see :func:`format_money` for template arguments)."""
    if amount is None:
        return ""
    return _numbers.format_currency(amount, currency, locale=_locale(locale))


def format_quantity(value: Decimal | int | None, locale: str) -> str:
    """Quantities keep up to three decimals but print without trailing zeros ("3", "1,5")."""
    if value is None:
        return ""
    return _numbers.format_decimal(value, format="#,##0.###", locale=_locale(locale))


def format_rate(value: Decimal | int | None, locale: str) -> str:
    """A rate stored in percent points (a 19 % tax is 19), never rounded: "19%", "7,5 %"."""
    if value is None:
        return ""
    return _numbers.format_percent(
        Decimal(value) / 100, locale=_locale(locale), decimal_quantization=False
    )
