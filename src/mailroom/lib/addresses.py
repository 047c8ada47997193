"""Email address normalization (no Django): validate syntax, IDN-aware, lowercase domain."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email


class InvalidAddress(ValueError):
    pass


def normalize_email(value: str) -> str:
    """Return the canonical form of `value` or raise InvalidAddress with a readable reason.

    The local part keeps its case (RFC 5321 says it may matter); the domain is lowercased and
    IDNA-normalized, so Ünïcode domains compare equal however they were typed.
    """
    value = (value or "").strip()
    if not value:
        raise InvalidAddress("An email address is required.")
    if any(ch in value for ch in "\r\n\0"):
        raise InvalidAddress("An email address cannot contain line breaks or NUL.")
    try:
        result = validate_email(value, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        raise InvalidAddress(str(exc)) from exc
    return result.normalized


def domain_of(address: str) -> str:
    return address.rsplit("@", 1)[-1].lower()
