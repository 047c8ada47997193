"""Bounces that are not RFC 3464 reports: Mailman's detectors, and delay warnings (no Django).

Yahoo, qmail variants, GroupWise, SMTP32, old Exchange and Microsoft SMTPSVC, Netscape, old
Postfix and Sendmail each write their own prose. flufl.bounce (GNU Mailman's detector library,
kept up for twenty years) knows those shapes; :mod:`mailroom.lib.bounces` asks it for the failed
addresses once its own parsers found none, and keeps its own hard/soft verdict: flufl's
permanent failures are read as failed (hard unless the report's words say soft, such as a full
mailbox), its temporary ones as delayed.

A delay warning ("Delivery Status Notification (Delay)", "Warning: message … delayed",
Sendmail's "THIS IS A WARNING MESSAGE ONLY") is no failure: whatever recipients its prose
names are delayed, so it never counts as a soft bounce.

flufl's detectors read every line of every part with regular expressions, so they only see a
bounded copy: the first MAX_BYTES, each line cut at MAX_LINE, and none nesting more than
MAX_MULTIPARTS multiparts. They never raise to the caller.
"""

from __future__ import annotations

import email
import email.policy
import logging
import re
from collections.abc import Iterable

from flufl.bounce import all_failures

__all__ = ["context", "domino", "failures", "is_warning"]

MAX_BYTES = 256_000
MAX_LINE = 998
MAX_ADDRESSES = 100
MAX_MULTIPARTS = 20
_LONG_LINE = re.compile(rb"([^\n]{%d})[^\n]+" % MAX_LINE)
_ADDRESS = re.compile(r"[^\s@<>()\[\],;:\"]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}")

_WARNING_SUBJECT = re.compile(
    r"\(delay\)|\bdelayed\b|^\s*warning\s*:|delivery delay|not yet (?:been )?delivered"
    r"|still undelivered|delivery (?:is )?postponed", re.IGNORECASE)
_WARNING_TEXT = re.compile(
    r"this is (?:a|just a|only a) warning|warning message only|you do not need to resend"
    r"|will keep trying|will (?:continue to )?(?:re)?try (?:to deliver|until|for)"
    r"|has not (?:yet )?been delivered yet|has not yet been delivered|not been delivered yet"
    r"|no action is required on your part|delivery attempts will continue"
    r"|message will be retried|has been delayed|keep trying for another"
    r"|delivery (?:has been|is) postponed", re.IGNORECASE)

logging.getLogger("flufl.bounce").setLevel(logging.CRITICAL)  # it logs every detector it runs


def failures(data: bytes) -> tuple[list[str], list[str]]:
    """(permanent, temporary) failed addresses flufl.bounce finds in a bounce, lowercased.

    Only things that look like an address are kept; anything the detectors trip over gives
    nothing rather than an error.
    """
    try:
        bounded = _LONG_LINE.sub(rb"\1", bytes(memoryview(data)[:MAX_BYTES]))
        if bounded.lower().count(b"boundary=") > MAX_MULTIPARTS:
            return [], []  # no bounce nests that deep; parsing it again would cost seconds
        msg = email.message_from_bytes(bounded, policy=email.policy.compat32)
        temporary, permanent = all_failures(msg)
    except Exception:  # a detector choking on a hostile message: no finding, no traceback
        return [], []
    failed = _clean(permanent)
    return failed, [a for a in _clean(temporary) if a not in failed]


def _clean(found: Iterable[bytes | str]) -> list[str]:
    out: list[str] = []
    for raw in sorted(found)[:MAX_ADDRESSES]:
        text = raw.decode("ascii", "replace") if isinstance(raw, bytes) else str(raw)
        match = _ADDRESS.fullmatch(text.strip().strip("<>").strip())
        if match:
            address = match.group(0).lower()
            if address not in out:
                out.append(address)
    return out


def is_warning(subject: str, text: str) -> bool:
    """Whether a report is a delay warning: delivery is still being tried."""
    if _WARNING_SUBJECT.search((subject or "")[:500]):
        return True
    return bool(_WARNING_TEXT.search((text or "")[:20_000]))


def context(text: str, address: str, limit: int = 60) -> list[str]:
    """The lines of the report that say why `address` failed.

    The paragraph naming the address; when that paragraph is the address alone (Netscape,
    Sendmail's list of addresses), the paragraph above it too, which holds the reason.
    """
    paragraphs = re.split(r"\n[ \t]*\n", text[:200_000])[:2000]
    lowered = address.lower()
    for index, paragraph in enumerate(paragraphs):
        if lowered not in paragraph.lower():
            continue
        lines = paragraph.strip("\n").split("\n")[:limit]
        rest = re.sub(r"[\s<>():;\"']", "", paragraph.lower().replace(lowered, ""))
        if len(rest) < 10 and index > 0:
            lines = paragraphs[index - 1].strip("\n").split("\n")[:limit] + lines
        return lines
    return []


_DOMINO = re.compile(r"was not delivered to:[ \t]*\n(?P<who>(?:[ \t]*\n|[ \t]+\S[^\n]*\n){1,40})"
                     r"\s*because:[ \t]*\n(?P<why>(?:[ \t]*\n|[ \t]+\S[^\n]*\n){1,20})",
                     re.IGNORECASE)


def domino(text: str) -> tuple[list[str], list[str]]:
    """Lotus Domino: 'was not delivered to:' the indented addresses, 'because:' the reason.

    flufl.bounce has this shape too, but refuses a domain with a hyphen in it.
    """
    found = _DOMINO.search(text[:50_000])
    if not found:
        return [], []
    addresses = _clean(found.group("who").split())
    return addresses, [line.strip() for line in found.group("why").split("\n") if line.strip()]
