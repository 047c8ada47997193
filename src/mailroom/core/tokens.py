"""Signing keys and the tokens Mailroom puts in mail so that what comes back can be trusted.

One key, derived from SECRET_KEY, signs bounce (VERP) addresses, reply tokens and the
`X-Mailroom-ID` header; the outgoing side writes them and the incoming side verifies them with
the same functions, so neither needs the other.
"""

from __future__ import annotations

import hashlib

from django.conf import settings

from mailroom.lib import verp

MAILROOM_ID_HEADER = "X-Mailroom-ID"
_MAIL_ID_PURPOSE = b"mailroom-mail-id\0"


def bounce_key() -> bytes:
    """The key that signs bounce addresses, reply tokens and X-Mailroom-ID."""
    return hashlib.sha256(b"mailroom bounce and mail-id key\0"
                          + settings.SECRET_KEY.encode()).digest()


def mailroom_id(mail_pk: int, key: bytes | None = None) -> str:
    return verp.sign_numbers(_MAIL_ID_PURPOSE, [mail_pk], key or bounce_key())


def parse_mailroom_id(value: str, key: bytes | None = None) -> int | None:
    """The mail id in an X-Mailroom-ID value we wrote, else None (never raises)."""
    numbers = verp.unsign_numbers(_MAIL_ID_PURPOSE, (value or "").strip(), key or bounce_key())
    return numbers[0] if numbers and len(numbers) == 1 else None
