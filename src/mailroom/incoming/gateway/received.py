"""The `Received:` line the gateway puts on top of every message it stores (RFC 5321 §4.4).

    Received: from client.example ([192.0.2.7])
            by mx.example.com (Mailroom) with ESMTPS
            (TLSv1.3 TLS_AES_256_GCM_SHA384 256 bits)
            for <sales@example.com>; Sun, 06 Dec 2026 15:31:35 +0000

`with` names the protocol as RFC 3848 registers it: SMTP (HELO), ESMTP (EHLO), LMTP, and an
"S" when STARTTLS was used. The client's HELO name is shown as given when it is a domain or an
address literal, otherwise in a comment; no reverse DNS is asked (a lookup per message would
make the store wait on DNS). The `for` clause names the envelope recipient only when there is
exactly one, so a message sent to several people does not reveal the others (§7.2).
The line never exceeds RECEIVED_ROOM bytes: the gateway advertises SIZE that much below
MAILROOM_INBOUND_MAX_BYTES, so a message accepted at the door is never too large once stamped.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import format_datetime

RECEIVED_ROOM = 1024  # bytes kept free under the size limit for this line

_DOMAIN = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})"
                     r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*\.?$")
_LITERAL = re.compile(r"^\[(?:[0-9.]{7,15}|IPv6:[0-9A-Fa-f:.]{2,45})\]$")
_UNSAFE = re.compile(r"[^\x21-\x7e]|[()\\]")


def address_literal(ip: str) -> str:
    return f"[IPv6:{ip}]" if ":" in ip else f"[{ip}]"


def _helo(helo: str) -> tuple[str, str]:
    """(the name after `from`, a comment): the HELO name itself when it is well formed."""
    helo = (helo or "").strip()
    if _DOMAIN.match(helo) or _LITERAL.match(helo):
        return helo, ""
    shown = _UNSAFE.sub("?", helo)[:64] or "?"
    return "", f"(HELO {shown})"


def received_header(*, helo: str, ip: str | None, hostname: str, protocol: str,
                    tls: tuple[str, str, int] | None = None, recipient: str | None = None,
                    when: datetime | None = None) -> bytes:
    """The stamp as bytes ending in CRLF. `tls`: (version, cipher, secret bits) when the
    session was encrypted; `recipient`: the envelope recipient of a one-recipient message."""
    name, helo_comment = _helo(helo)
    literal = address_literal(ip) if ip else ""
    if not name:
        name = literal or "localhost"
        literal = "" if name == literal else literal
    parts = [f"from {name}"]
    if helo_comment:
        parts[0] += f" {helo_comment}"
    if literal:
        parts[0] += f" ({literal})"
    parts.append(f"by {hostname[:255] or 'localhost'} (Mailroom) with {protocol}")
    if tls is not None:
        version, cipher, bits = tls
        parts.append(f"({_UNSAFE.sub('?', version)[:20]} {_UNSAFE.sub('?', cipher)[:80]} "
                     f"{int(bits or 0)} bits)")
    date = format_datetime(when or datetime.now(UTC))
    stamp = _fold(parts, recipient, date)
    if len(stamp) > RECEIVED_ROOM:  # a very long recipient: leave the clause out
        stamp = _fold(parts, None, date)
    return stamp


def _fold(parts: list[str], recipient: str | None, date: str) -> bytes:
    lines = list(parts)
    if recipient and "<" not in recipient and ">" not in recipient:
        lines.append(f"for <{recipient}>")
    lines[-1] += f"; {date}"
    return ("Received: " + "\r\n\t".join(lines) + "\r\n").encode("utf-8", "replace")
