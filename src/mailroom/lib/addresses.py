"""Email address normalization (no Django): validate syntax, IDN-aware, lowercase domain."""

from __future__ import annotations

import re

import email_validator
from email_validator import EmailNotValidError, validate_email


class InvalidAddress(ValueError):
    pass


# A plain lower-case ASCII address (what forms, imports and subscriptions mostly store) that
# is certainly valid and sendable: a dot-atom of at most 64 characters at a domain of
# letter-digit-hyphen labels (no double hyphen) with a letter TLD that is not special-use;
# for those, the library's answer is the address itself (a property test proves it); checking
# it here costs a regular expression instead of a full parse — a mass send checks thousands.
# Anything else goes through email_validator, which decides.
_ATOM = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_PLAIN_ADDRESS = re.compile(
    rf"(?=[^@]{{1,64}}@){_ATOM}(?:\.{_ATOM})*@(?:{_LABEL}\.)+([a-z]{{2,63}})")


def plain_sendable(value: str) -> bool:
    """True when `value` is certainly valid and sendable as it is (see above); False means
    "ask the library", not "invalid"."""
    if len(value) > 254 or "--" in value.rpartition("@")[2]:
        return False  # "ab--c" labels: IDNA reserves hyphens 3-4 (xn--…); the library decides
    plain = _PLAIN_ADDRESS.fullmatch(value)
    return plain is not None and plain[1] not in email_validator.SPECIAL_USE_DOMAIN_NAMES


def normalize_email(value: str) -> str:
    """Return the canonical form of `value` or raise InvalidAddress with a readable reason.

    The local part keeps its case (RFC 5321 says it may matter); the domain is lowercased and
    IDNA-normalized, so Ünïcode domains compare equal however they were typed.
    """
    value = (value or "").strip()
    if plain_sendable(value):
        return value
    if not value:
        raise InvalidAddress("An email address is required.")
    if any(ch in value for ch in "\r\n\0"):
        raise InvalidAddress("An email address cannot contain line breaks or NUL.")
    try:
        result = validate_email(value, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        raise InvalidAddress(str(exc)) from exc
    return result.normalized


LOCAL_PART_MAX = 64  # octets; RFC 5321 4.5.3.1.1 (servers refuse longer ones)


def sendable_email(value: str) -> str:
    """`normalize_email`, plus what SMTP itself accepts: a local part of at most 64 octets
    and a domain that has an IDNA form. For addresses Mailroom sends to (or from); received
    mail keeps `normalize_email`, since other servers are not as strict."""
    if plain_sendable(value):
        return value
    address = normalize_email(value)
    local, _, domain = address.rpartition("@")
    size = len(local.encode("utf-8"))
    if size > LOCAL_PART_MAX:
        unit = "characters" if local.isascii() else "bytes in UTF-8"
        raise InvalidAddress(f"The part before the @ is {size} {unit} long; mail servers "
                             f"accept at most {LOCAL_PART_MAX}.")
    if not domain.startswith("["):
        ascii_domain(domain)
    return address


def domain_of(address: str) -> str:
    return address.rsplit("@", 1)[-1].lower()


# --- on the wire ----------------------------------------------------------------------------

_PHRASE_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                         "!#$%&'*+-/=?^_`{|}~ ")


def ascii_domain(domain: str) -> str:
    """The domain as DNS and SMTP without SMTPUTF8 know it: IDNA 2008 (UTS 46) A-labels,
    lowercased. Raises InvalidAddress when it cannot be encoded."""
    import idna  # a dependency of email-validator

    domain = domain.strip().rstrip(".").lower()
    if domain.isascii():
        return domain
    try:
        return idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise InvalidAddress(f"The domain {domain!r} cannot be encoded: {exc}") from exc


def envelope_address(address: str) -> tuple[str, bool]:
    """(the address as it goes in MAIL FROM / RCPT TO, whether it needs SMTPUTF8).

    The domain always travels as its IDNA A-label (`xn--…`), which every server understands;
    only a non-ASCII local part needs a server that offers SMTPUTF8 (RFC 6531).
    """
    local, at, domain = address.rpartition("@")
    if not at:
        return address, not address.isascii()
    return f"{local}@{ascii_domain(domain)}", not local.isascii()


def format_mailbox(name: str, address: str) -> str:
    """`"Name" <address>` for display and storage, Unicode kept (RFC 6532 style).

    Unlike `email.utils.formataddr` it does not insist on an ASCII address (a sender with a
    UTF-8 local part arrives over SMTPUTF8) and does not turn the name into encoded-words.
    """
    name = " ".join((name or "").split())
    if not name:
        return address
    if not all(c in _PHRASE_SAFE or not c.isascii() for c in name):
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{name} <{address}>"
