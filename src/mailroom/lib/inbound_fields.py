"""Header field values of inbound mail: RFC 2047 words and address lists (no Django).

Part of lib/inbound.py, split out to keep files short. Why not the stdlib? `email.header`
raises on broken base64 and unknown charsets, and `email.utils.getaddresses` (in this Python)
misreads some quoted strings and groups, which for a router means mail to the wrong place;
this tokenizer reads what it can, never raises, and falls back to picking out addr-specs.
"""

from __future__ import annotations

import binascii
import codecs
import functools
import re
from urllib.parse import unquote_to_bytes

_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_NOT_BASE64 = bytes(sorted(set(range(256)) - set(_BASE64_ALPHABET)))


def lenient_b64decode(data: bytes) -> bytes:
    """Base64 with junk characters skipped and padding repaired; what cannot decode is lost."""
    data = data.translate(None, _NOT_BASE64)  # C speed; a regex took 20 s on 50 MB of junk
    if len(data) % 4 == 1:  # one dangling character carries no whole byte
        data = data[:-1]
    try:
        return binascii.a2b_base64(data + b"=" * (-len(data) % 4))
    except binascii.Error:  # pragma: no cover - cleaned input always decodes
        return b""


def decode_words(value: str) -> str:
    """RFC 2047 encoded-words decoded; whitespace between two words dropped, never raising.

    Adjacent words in one charset are joined as bytes before decoding, so a character split
    across two words (as some senders do) still reads back.
    """
    if "=?" not in value:
        return value
    out: list[str] = []
    charset, data = "", bytearray()
    pos = 0
    for m in _ENCODED_WORD.finditer(value):
        gap = value[pos:m.start()]
        between_words = pos > 0 and gap.isspace()  # pos > 0: a word came before
        word_charset = m[1].lower()
        if data and (word_charset != charset or (gap and not between_words)):
            out.append(decode_text(bytes(data), charset.partition("*")[0]))
            data.clear()
        if gap and not between_words:
            out.append(gap)
        charset = word_charset
        payload = m[3].encode("utf-8", "replace")
        if m[2] in "bB":
            data += lenient_b64decode(payload)
        else:
            data += binascii.a2b_qp(payload, header=True)
        pos = m.end()
    if data:
        out.append(decode_text(bytes(data), charset.partition("*")[0]))
    out.append(value[pos:])
    return "".join(out)


# -- charsets and parameters ----------------------------------------------------------------

_PARAM = re.compile(r';\s*([^\s=;]+)\s*=\s*("(?:[^"\\]|\\.)*"?|[^;]*)', re.S)
_SECTION = re.compile(r"(\d{1,2})(\*?)")
# Codecs that are not charsets a mail can be in, or are slow on hostile input.
_REFUSED_CODECS = frozenset({"idna", "punycode", "undefined", "unicode_escape",
                             "raw_unicode_escape", "palmos", "mbcs", "oem"})


@functools.lru_cache(maxsize=256)
def _codec(charset: str | None) -> str | None:
    """Python codec name for a MIME charset; None when unknown or refused (read as UTF-8)."""
    name = (charset or "").strip().strip("\"'").lower()
    if not name or len(name) > 40:
        return None
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in _REFUSED_CODECS:
        return None
    return "utf-8" if info.name == "ascii" else info.name  # "us-ascii" mail is often UTF-8


def decode_text(data: bytes, charset: str | None) -> str:
    """Bytes in a declared charset as text; unknown charsets as UTF-8, never raising."""
    codec = _codec(charset)
    if codec is None:
        if data.isascii():
            return data.decode("ascii").replace("\0", "")
        try:
            return data.decode("utf-8").replace("\0", "")
        except UnicodeDecodeError:
            codec = "utf-8" if charset else "cp1252"
    try:
        text = data.decode(codec, "replace")
    except Exception:  # noqa: BLE001 - some codecs refuse "replace" or fail oddly
        text = data.decode("utf-8", "replace")
    return text.replace("\0", "")


def params(value: str | None) -> tuple[str, dict[str, str]]:
    """'type/sub; a=b' as ('type/sub', {'a': 'b'}), RFC 2231 continuations joined."""
    if not value:
        return "", {}
    head, _, rest = value.partition(";")
    params: dict[str, str] = {}
    sections: dict[str, dict[int, tuple[str, bool]]] = {}
    for key, raw in _PARAM.findall(";" + rest):
        if raw.startswith('"'):
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1] if raw.endswith('"') and len(raw) > 1
                         else raw[1:])
        else:
            raw = raw.strip()
        key = key.lower()
        if "*" in key:
            base, _, section = key.partition("*")
            m = _SECTION.fullmatch(section)
            number, encoded = (int(m[1]), bool(m[2])) if m else (0, True)
            sections.setdefault(base, {}).setdefault(number, (raw, encoded))
        else:
            params.setdefault(key, raw)
    for base, parts in sections.items():
        charset, data = "", b""
        for number in sorted(parts):
            raw, encoded = parts[number]
            if encoded and number == 0 and raw.count("'") >= 2:
                charset, _, raw = raw.split("'", 2)
            data += unquote_to_bytes(raw) if encoded else raw.encode("utf-8", "replace")
        params[base] = decode_text(data, charset or "utf-8")  # RFC 2231 beats plain
    return head.strip().lower(), params


# -- address lists --------------------------------------------------------------------------

_TOKEN = re.compile(r"""
    "(?P<quoted>(?:[^"\\]|\\.)*)"?      # quoted string; an unclosed one runs to the end
  | <(?P<angle>[^<>]*)>                 # angle address
  | <(?P<open>[^<>,;]*)                 # unclosed angle address: up to the next comma
  | (?P<special>[,;:])
  | (?P<space>\s+)
  | (?P<atom>[^\s"(<>,;:]+|[<>)])       # atoms, dots, @; stray brackets as text
""", re.X | re.S)
_ESCAPE = re.compile(r"\\(.)", re.S)
_DOMAIN = re.compile(r"[^\s@<>(),;:\"\\\[\]]+|\[[^\[\]\\\s]*\]")
_LOCAL = re.compile(r"[^\s@<>(),;:\"\\\[\]]+|\"(?:[^\"\\]|\\.)*\"", re.S)
_BARE_ADDRESS = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")


def _comment(value: str, pos: int) -> tuple[str, int]:
    """A (nested) comment starting at value[pos] == '(': its text and where it ends."""
    depth, i, size = 0, pos, len(value)
    while i < size:
        char = value[i]
        if char == "\\":
            i += 1
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return _ESCAPE.sub(r"\1", value[pos + 1:i]), i + 1
        i += 1
    return _ESCAPE.sub(r"\1", value[pos + 1:]), size


def normalize_address(address: str) -> str:
    """'Local@Example.COM' as 'Local@example.com'; '' unless it is one local@domain."""
    local, at, domain = address.strip().rpartition("@")
    if not at or not _LOCAL.fullmatch(local) or not _DOMAIN.fullmatch(domain):
        return ""
    return f"{local}@{domain.lower()}"


def _mailbox(words: list[tuple[str, str]], angle: str | None, comment: str
             ) -> tuple[str, str] | None:
    """(name, address) from the words, angle address and last comment of one mailbox."""
    if angle is not None:
        route, colon, rest = angle.partition(":")
        address = normalize_address(rest if colon and route.startswith("@") else angle)
        name = " ".join(display for _, display in words) or comment
    else:
        # an encoded-word is never part of an address (RFC 2047 5): skip stray ones
        address = normalize_address("".join(
            raw for raw, _ in words if not _ENCODED_WORD.fullmatch(raw)))
        name = comment
    if not address:
        return None
    name = " ".join(decode_words(name).split()) if "=?" in name else name.strip()
    return name, address


def parse_addresses(value: str) -> list[tuple[str, str]]:
    """(name, address) pairs of an address list; groups flattened, junk skipped, no raising."""
    found: list[tuple[str, str]] = []
    words: list[tuple[str, str]] = []  # (as written, as displayed)
    angle: str | None = None
    comment = ""
    pos, size = 0, len(value)
    while pos < size:
        if value[pos] == "(":
            comment, pos = _comment(value, pos)
            continue
        m = _TOKEN.match(value, pos)
        if m is None:  # not reached: every character but "(" (read above) starts a token
            break
        pos = m.end()
        kind = m.lastgroup
        if kind in ("quoted", "atom") and angle is not None:
            # words after <address> and before a comma: a new mailbox whose comma went missing
            # (the stdlib folder can write a comma as an encoded-word)
            mailbox = _mailbox(words, angle, comment)
            if mailbox:
                found.append(mailbox)
            words, angle, comment = [], None, ""
        if kind == "quoted":
            words.append((m[0], _ESCAPE.sub(r"\1", m["quoted"])))
        elif kind in ("angle", "open"):
            angle = m[kind]
        elif kind == "atom":
            words.append((m[0], m[0]))
        elif kind == "special":
            if m[0] == ":" and angle is None:  # a group's name: drop it, read its members
                words, comment = [], ""
                continue
            mailbox = _mailbox(words, angle, comment) if words or angle is not None else None
            if mailbox:
                found.append(mailbox)
            words, angle, comment = [], None, ""
    mailbox = _mailbox(words, angle, comment) if words or angle is not None else None
    if mailbox:
        found.append(mailbox)
    if not found and "@" in value:  # nothing made sense: keep whatever looks like an address
        found = [("", normalize_address(a)) for a in _BARE_ADDRESS.findall(value)]
        found = [pair for pair in found if pair[1]]
    return found
