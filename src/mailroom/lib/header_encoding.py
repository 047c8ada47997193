"""Header lines as RFC 5322 and RFC 2047 want them (no Django): encoded-words for non-ASCII
text, split at character boundaries only, and folding at spaces within 78 characters where
possible (never past 998). Used by the MIME builder (mime.py)."""

from __future__ import annotations

import base64

CRLF = "\r\n"
MAX_LINE = 998  # RFC 5322 2.1.1: MUST
FOLD_AT = 78  # RFC 5322 2.1.1: SHOULD
MAX_ENCODED_WORD = 75  # RFC 2047 2

# RFC 2047 5(3): the characters an encoded-word may carry literally, in any header context.
_Q_LITERAL = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")
_Q_BYTE = [
    chr(b) if b in _Q_LITERAL else ("_" if b == 0x20 else f"={b:02X}") for b in range(256)
]


def _is_continuation(byte: int) -> bool:
    return byte & 0xC0 == 0x80


def prefer_base64(raw: bytes, text: str) -> bool:
    # UTF-8 adds 1-3 bytes per non-ASCII char and Q spends 3 chars per such byte.
    return (len(raw) - len(text)) * 3 > len(raw)


def _b_words(raw: bytes, first: int, rest: int) -> list[str]:
    """Base64 encoded-words of at most `first`, then `rest`, characters, whole chars each."""
    words: list[str] = []
    start, budget = 0, first
    while start < len(raw) or not words:
        size = max((budget - 12) // 4 * 3, 3)  # "=?utf-8?b?" + payload + "?="
        end = min(start + size, len(raw))
        while end < len(raw) and _is_continuation(raw[end]) and end > start + 1:
            end -= 1
        words.append("=?utf-8?b?" + base64.b64encode(raw[start:end]).decode("ascii") + "?=")
        start, budget = end, rest
    return words


def _q_words(raw: bytes, first: int, rest: int) -> list[str]:
    """Q encoded-words of at most `first`, then `rest`, characters, whole chars each."""
    encoded = "".join(map(_Q_BYTE.__getitem__, raw))
    words: list[str] = []
    budget = max(first - 12, 12)  # "=?utf-8?q?" + payload + "?="
    while len(encoded) > budget:
        cut = budget
        if "=" in encoded[cut - 2:cut]:  # never split an =XX escape
            cut = encoded.rindex("=", cut - 2, cut)
        while encoded[cut] == "=" and encoded[cut + 1] in "89AB" and cut > 3:
            cut -= 3  # the next byte continues a UTF-8 character: cut before its lead byte
        words.append("=?utf-8?q?" + encoded[:cut] + "?=")
        encoded = encoded[cut:]
        budget = max(rest - 12, 12)
    words.append("=?utf-8?q?" + encoded + "?=")
    return words


def encoded_words(text: str, first: int, rest: int = MAX_ENCODED_WORD) -> list[str]:
    raw = text.encode("utf-8")
    if prefer_base64(raw, text):
        return _b_words(raw, first, rest)
    return _q_words(raw, first, rest)


def unstructured_header(name: str, value: str) -> str:
    """One header line (CRLF included) for a free-text value: Subject, custom headers."""
    prefix = name + ": "
    if (
        value.isascii()
        and value.isprintable()
        and "=?" not in value
        and "  " not in value
        and value == value.strip()
        and all(len(word) < FOLD_AT - 10 for word in value.split(" "))
    ):
        return fold_words(prefix, value)
    first = FOLD_AT - len(prefix)
    if first < 20:
        first = MAX_ENCODED_WORD
    return prefix + "\r\n ".join(encoded_words(value, min(first, MAX_ENCODED_WORD))) + CRLF


def fold_words(prefix: str, value: str, field: str | None = None) -> str:
    """Fold an ASCII value at single spaces so lines stay within 78 characters if possible."""
    if len(prefix) + len(value) <= FOLD_AT:
        return prefix + value + CRLF
    lines: list[str] = []
    words = value.split(" ")
    line = prefix + words[0]  # the first word stays after the colon
    for word in words[1:]:
        if word and len(line) + 1 + len(word) > FOLD_AT:
            lines.append(line)
            line = " " + word
        else:
            line += " " + word
    lines.append(line)
    if any(len(x) > MAX_LINE for x in lines):
        raise ValueError(f"{field or prefix.rstrip(': ')} has a word too long for one line")
    return CRLF.join(lines) + CRLF
