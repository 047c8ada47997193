"""Signed per-mail addresses: VERP bounce addresses and reply tokens (no Django).

    bounce+<token>@bounces.example.com   the envelope sender of one mail (and recipient), so a
                                         bounce names exactly what failed
    reply+<token>@example.com            a Reply-To that leads an answer back to its thread

A token is base32 (lowercase, no padding) of the numbers it carries, as unsigned LEB128
varints, followed by the first 10 bytes (80 bits) of an HMAC-SHA256 over a purpose label and
those numbers. Base32 is case-insensitive, which matters because some MTAs lowercase or
uppercase local parts; the purpose label keeps a reply token from passing as a bounce token
and the other way round. Tokens are short: mail 1,234,567 to recipient 7,654,321 gives a
28-character token, and the local part never exceeds RFC 5321's 64 characters (checked).

Parsing never raises for foreign input: a tampered, truncated, foreign or unsigned address
gives None. Several keys can be given to parse while keys are rotated.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Iterable, Sequence

MAC_BYTES = 10
MAX_LOCAL_PART = 64
SEPARATOR = "+"
_BOUNCE = b"mailroom-bounce\0"
_REPLY = b"mailroom-reply\0"

Keys = bytes | Sequence[bytes]


def _varints(numbers: Iterable[int]) -> bytes:
    out = bytearray()
    for number in numbers:
        if not isinstance(number, int) or isinstance(number, bool) or number < 0:
            raise ValueError("token numbers must be non-negative integers")
        while True:
            byte = number & 0x7F
            number >>= 7
            if number:
                out.append(byte | 0x80)
            else:
                out.append(byte)
                break
    return bytes(out)


def _read_varints(data: bytes) -> list[int] | None:
    numbers: list[int] = []
    number = shift = 0
    for index, byte in enumerate(data):
        if shift > 63 or (byte == 0 and shift and index):  # too long, or not minimal
            return None
        number |= (byte & 0x7F) << shift
        if byte & 0x80:
            shift += 7
        else:
            numbers.append(number)
            number = shift = 0
    return None if shift else numbers


def _key_list(key: Keys) -> list[bytes]:
    keys = [key] if isinstance(key, bytes | bytearray) else list(key)
    if not keys or any(len(k) < 16 for k in keys):
        raise ValueError("a signing key of at least 16 bytes is required")
    return [bytes(k) for k in keys]


def _mac(key: bytes, purpose: bytes, payload: bytes) -> bytes:
    return hmac.digest(key, purpose + payload, "sha256")[:MAC_BYTES]


def sign_numbers(purpose: bytes, numbers: Sequence[int], key: bytes) -> str:
    """The token for `numbers` under `purpose` (exposed for other signed-address kinds)."""
    payload = _varints(numbers)
    raw = payload + _mac(_key_list(key)[0], purpose, payload)
    return base64.b32encode(raw).decode("ascii").rstrip("=").lower()


def unsign_numbers(purpose: bytes, token: str, key: Keys) -> list[int] | None:
    """The numbers in `token` if one of the keys signed it for `purpose`, else None."""
    keys = _key_list(key)
    token = token.strip().upper()
    if not token or len(token) > 80 or not token.isascii():
        return None
    try:
        raw = base64.b32decode(token + "=" * (-len(token) % 8))
    except (binascii.Error, ValueError):
        return None
    if len(raw) <= MAC_BYTES:
        return None
    payload, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
    if base64.b32encode(raw).decode("ascii").rstrip("=") != token:
        return None  # non-canonical spelling of the same bytes
    if not any(hmac.compare_digest(_mac(k, purpose, payload), mac) for k in keys):
        return None
    return _read_varints(payload)


def _address(local: str, token: str, domain: str) -> str:
    if not local or SEPARATOR in local or "@" in local or not local.isascii():
        raise ValueError(f"invalid local part prefix {local!r}")
    if not domain or "@" in domain or any(c in domain for c in "\r\n\0 <>"):
        raise ValueError(f"invalid domain {domain!r}")
    local_part = f"{local}{SEPARATOR}{token}"
    if len(local_part) > MAX_LOCAL_PART:
        raise ValueError(f"local part {local_part!r} is longer than {MAX_LOCAL_PART} characters")
    return f"{local_part}@{domain}"


def _token_of(address: str, local: str | None) -> str | None:
    address = address.strip().strip("<>").strip()
    local_part, at, _domain = address.rpartition("@")
    prefix, sep, token = local_part.partition(SEPARATOR)
    if not at or not sep or not token:
        return None
    if local is not None and prefix.lower() != local.lower():
        return None
    return token


def make_bounce_address(local: str = "bounce", *, mail_id: int, recipient_id: int | None,
                        domain: str, key: bytes) -> str:
    """`bounce+<token>@domain`: the envelope sender for one mail (and one recipient)."""
    numbers = [mail_id] if recipient_id is None else [mail_id, recipient_id]
    return _address(local, sign_numbers(_BOUNCE, numbers, key), domain)


def parse_bounce_address(address: str, key: Keys, *,
                         local: str | None = None) -> tuple[int, int | None] | None:
    """(mail_id, recipient_id or None) from a bounce address we signed, else None.

    `local`, when given, must match the prefix before "+" (case-insensitively).
    """
    token = _token_of(address, local)
    numbers = unsign_numbers(_BOUNCE, token, key) if token else None
    if numbers is None or len(numbers) not in (1, 2):
        return None
    return numbers[0], (numbers[1] if len(numbers) == 2 else None)


def make_reply_token(*ids: int, key: bytes) -> str:
    """A token for a thread, e.g. `make_reply_token(content_type_id, object_id, key=k)`."""
    if not ids:
        raise ValueError("a reply token needs at least one id")
    return sign_numbers(_REPLY, ids, key)


def parse_reply_token(token: str, key: Keys) -> tuple[int, ...] | None:
    numbers = unsign_numbers(_REPLY, token, key)
    return tuple(numbers) if numbers else None


def make_reply_address(local: str, *ids: int, domain: str, key: bytes) -> str:
    """`local+<token>@domain`, e.g. a Reply-To leading back to a record's thread."""
    return _address(local, make_reply_token(*ids, key=key), domain)


def parse_reply_address(address: str, key: Keys, *,
                        local: str | None = None) -> tuple[int, ...] | None:
    token = _token_of(address, local)
    return parse_reply_token(token, key) if token else None
