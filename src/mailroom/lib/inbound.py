"""Parse inbound mail lazily and within limits (no Django).

Why not `email.message_from_bytes`? The router must route >= 300 messages/s on two cores; the
stdlib parser with policy.default manages ~150 mixed messages/s and builds the whole MIME tree
first, so a 10,000-part or 1,000-deep message costs seconds and a lot of memory before anyone
can say no. Here:

- `parse_head` reads the header block only (routing needs nothing else) with a plain line
  splitter; fields are decoded (RFC 2047, raw UTF-8 or Windows-1252) only when read.
- `parse_body` walks the MIME tree by offsets into the raw bytes, counting parts and depth as
  it finds boundaries, and raises `TooManyParts` / `TooDeep` before decoding anything; the
  wall clock is checked between parts.
- Nothing here raises anything but `InboundError` subclasses on hostile input: broken base64,
  unknown or refused charsets, NUL bytes, odd address groups are decoded best effort. Archives
  are never unpacked (lib/dangerous.py reads a zip's directory of names); message/rfc822
  parts are kept whole as .eml attachments.

Measured by bench/inbound_parse.py (2,000 mixed messages, one core of a busy 2-core machine):
parse_head + the routing fields ~23,000/s, parse_body ~4,000-7,000/s; the stdlib's full parse
~320-620/s with policy.default and ~2,900-3,500/s with compat32.
"""

from __future__ import annotations

import binascii
import functools
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from mailroom.lib import inbound_fields as fields_
from mailroom.lib.dangerous import danger, safe_name
from mailroom.lib.inbound_fields import decode_text, decode_words, parse_addresses


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 50 * 1024 * 1024
    max_header_bytes: int = 256 * 1024  # whole header block
    max_headers: int = 1000
    max_parts: int = 1000
    max_depth: int = 30
    max_seconds: float = 10.0  # parse_body wall-clock budget


class InboundError(ValueError):
    """Base of every refusal; str(e) is a plain sentence for the UI."""


class TooLarge(InboundError):
    def __init__(self, size: int, limit: int):
        super().__init__(f"The message is {size:,} bytes; the limit is {limit:,} bytes.")


class HeaderTooLarge(InboundError):
    pass


class TooManyParts(InboundError):
    def __init__(self, limit: int):
        super().__init__(f"The message has more than {limit:,} parts.")


class TooDeep(InboundError):
    def __init__(self, limit: int):
        super().__init__(f"The message nests parts more than {limit} levels deep.")


class TooSlow(InboundError):
    def __init__(self, seconds: float):
        super().__init__(f"Reading the message took longer than {seconds:g} seconds.")


# -- header block ---------------------------------------------------------------------------

_BLANK = re.compile(rb"\n\r?\n")
_FIELD_NAME = re.compile(rb"[!-9;-~]+")


def _blank_line(raw: bytes, start: int, stop: int) -> tuple[int, int] | None:
    """(end of the header block, start of the body) if a blank line is in raw[start:stop]."""
    if raw.startswith(b"\n", start):
        return start, start + 1
    if raw.startswith(b"\r\n", start):
        return start, start + 2
    m = _BLANK.search(raw, start, stop)
    return (m.start() + 1, m.end()) if m else None


def split_head(raw: bytes) -> tuple[bytes, bytes]:
    """Header block and body, split at the first blank line (CRLF or LF); none: all header."""
    found = _blank_line(raw, 0, len(raw))
    if found is None:
        return raw, b""
    return raw[:found[0]], raw[found[1]:]


def _text(value: bytes) -> str:
    """Header bytes as text: ASCII, else raw UTF-8 (RFC 6532), else Windows-1252."""
    if value.isascii():
        text = value.decode("ascii")
    else:
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            text = value.decode("cp1252", "replace")
    if "\0" in text or "\r" in text:
        text = text.replace("\0", "").replace("\r", " ")
    return text


def _fields(block: bytes, max_headers: int, strict: bool) -> tuple[list[tuple[str, str]], int]:
    """Unfolded (lowercased name, value) pairs and where they end.

    A line that is neither a field nor a continuation is skipped, or with `strict` (MIME part
    headers, as the stdlib does) ends the header block: the body starts on it.
    """
    fields: list[tuple[str, str]] = []
    name: bytes | None = None
    chunks: list[bytes] = []
    pos, size = 0, len(block)
    while pos < size:
        nl = block.find(b"\n", pos)
        nxt = size if nl < 0 else nl + 1
        line = block[pos:nxt].rstrip(b"\r\n")
        if line[:1] in (b" ", b"\t"):
            if name is not None:
                chunks.append(line)
        else:
            colon = line.find(b":")
            field = line[:colon].rstrip(b" \t") if colon > 0 else b""
            if field and _FIELD_NAME.fullmatch(field):
                if name is not None:
                    fields.append((name.decode("ascii").lower(), _text(b"".join(chunks))))
                    if len(fields) >= max_headers:
                        raise HeaderTooLarge(
                            f"The message has more than {max_headers:,} header fields.")
                name, chunks = field, [line[colon + 1:].lstrip(b" \t")]
            elif strict and not (line.startswith(b"From ") and pos == 0):
                break
        pos = nxt
    if name is not None:
        fields.append((name.decode("ascii").lower(), _text(b"".join(chunks))))
    return fields, pos


def _header_too_large(limit: int) -> HeaderTooLarge:
    return HeaderTooLarge(f"The message headers are larger than {limit // 1024:,} kB.")


# -- Head -----------------------------------------------------------------------------------

_BRACKETED = re.compile(r"<([^<>]*)>")
_EMPTY_GROUP = re.compile(r'[^:<>@;,]{0,200}:\s*(?:\(.*?\)\s*)?;?\s*')
MAX_REFERENCES = 100
# Header-derived values are cut here, once, so both databases store the same thing (SQLite
# would keep a 200 kB subject whole where PostgreSQL's column refuses it): the subject at
# RFC 5322's line length (the subject columns' size), a display name at the author column's.
MAX_SUBJECT = 998
MAX_NAME = 200
MAX_ID = 998
ELLIPSIS = "…"


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, ending in an ellipsis when cut."""
    if len(text) <= limit:
        return text
    return text[:limit - 1].rstrip() + ELLIPSIS


def _ids(value: str) -> list[str]:
    """Bracketed message ids in order, deduplicated; bare tokens with an @ if none bracketed."""
    found = [re.sub(r"\s+", "", m) for m in _BRACKETED.findall(value)]
    if not found:
        found = [t.strip("<>,;") for t in value.split() if "@" in t]
    # an id too long for the id columns is no id anyone can match (never cut: a cut id is wrong)
    return list(dict.fromkeys(f"<{i}>" for i in found if i and len(i) <= MAX_ID - 2))


class Head:
    """The header fields of a message; every property is computed once, on first read."""

    def __init__(self, fields: list[tuple[str, str]], header_bytes: int, size: int):
        self.header_bytes = header_bytes
        self.size = size
        self._fields: dict[str, list[str]] = {}
        self._cut: dict[str, int] = {}  # field -> its length before clip()
        for name, value in fields:
            self._fields.setdefault(name, []).append(value)

    def __repr__(self) -> str:
        return f"<Head {self.message_id or '(no id)'} {self.subject[:40]!r}>"

    def _raw(self, name: str) -> str | None:
        values = self._fields.get(name.lower())
        return values[0] if values else None

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first field of that name (any case), decoded and unfolded."""
        value = self._raw(name)
        return default if value is None else decode_words(value).strip()

    def get_all(self, name: str) -> list[str]:
        return [decode_words(v).strip() for v in self._fields.get(name.lower(), ())]

    def _addresses(self, name: str) -> list[tuple[str, str]]:
        return [a for v in self._fields.get(name, ()) for a in parse_addresses(v)]

    @functools.cached_property
    def message_id(self) -> str:
        ids = _ids(self._raw("message-id") or "")
        return ids[0] if ids else ""

    @functools.cached_property
    def in_reply_to(self) -> list[str]:
        return _ids(self._raw("in-reply-to") or "")

    @functools.cached_property
    def references(self) -> list[str]:
        """In thread order; a long thread keeps its newest ids (the ones replies point at)."""
        return _ids(" ".join(self._fields.get("references", ())))[-MAX_REFERENCES:]

    @functools.cached_property
    def subject(self) -> str:
        """The subject, at most MAX_SUBJECT characters (ending in '…' when cut)."""
        return self._clip("Subject", self.get("subject") or "", MAX_SUBJECT)

    def _clip(self, field: str, value: str, limit: int) -> str:
        if len(value) > limit:
            self._cut[field] = len(value)
        return clip(value, limit)

    def cut_fields(self) -> dict[str, int]:
        """The header-derived values cut to fit, with their full length: {'Subject': 204800}."""
        _ = (self.subject, self._from)  # computing them records what was cut
        return dict(self._cut)

    @functools.cached_property
    def _from(self) -> tuple[str, str]:
        found = self._addresses("from")
        name, address = found[0] if found else ("", "")
        return self._clip("From name", name, MAX_NAME), address

    @functools.cached_property
    def from_empty_group(self) -> str:
        """The From line when it is an address group with nobody in it
        ('undisclosed-recipients:;'): the message names no sender at all. '' otherwise."""
        value = self._raw("from")
        if value is None or self._addresses("from"):
            return ""
        text = " ".join(decode_words(value).split())
        return text[:80] if _EMPTY_GROUP.fullmatch(text) else ""

    @property
    def from_name(self) -> str:
        return self._from[0]

    @property
    def from_address(self) -> str:
        return self._from[1]

    @functools.cached_property
    def sender_address(self) -> str:
        found = self._addresses("sender")
        return found[0][1] if found else ""

    @functools.cached_property
    def reply_to(self) -> list[tuple[str, str]]:
        return self._addresses("reply-to")

    @functools.cached_property
    def to(self) -> list[tuple[str, str]]:
        return self._addresses("to")

    @functools.cached_property
    def cc(self) -> list[tuple[str, str]]:
        return self._addresses("cc")

    @functools.cached_property
    def date(self) -> datetime | None:
        value = self._raw("date")
        if not value:
            return None
        try:  # the stdlib date parser has raised odd errors on odd input over the years
            parsed = parsedate_to_datetime(value.strip())
            if parsed.tzinfo is None:  # "-0000": UTC with no claim about local time
                parsed = parsed.replace(tzinfo=UTC)
            return parsed.astimezone(UTC)
        except Exception:  # noqa: BLE001 - an unreadable date is no date
            return None


def parse_head(raw: bytes, limits: Limits = Limits()) -> Head:
    """The header block only, for routing; raises TooLarge or HeaderTooLarge, nothing else."""
    if len(raw) > limits.max_bytes:
        raise TooLarge(len(raw), limits.max_bytes)
    found = _blank_line(raw, 0, min(len(raw), limits.max_header_bytes + 4))
    end = found[0] if found else len(raw)
    if end > limits.max_header_bytes:
        raise _header_too_large(limits.max_header_bytes)
    fields, _ = _fields(raw[:end], limits.max_headers, strict=False)
    return Head(fields, end, len(raw))


# -- body -----------------------------------------------------------------------------------

_MIMETYPE = re.compile(r"[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+")
_MESSAGE_TYPES = frozenset({"message/rfc822", "message/global"})


@dataclass(frozen=True)
class Part:
    filename: str
    content_type: str
    data: bytes
    content_id: str  # '' or without <>
    inline: bool
    dangerous: bool
    danger: str = ""  # why, in plain words ('' when not dangerous)


@dataclass(frozen=True)
class Body:
    text: str
    html: str  # NOT sanitized here
    attachments: list[Part]
    parts: int  # MIME parts seen


@dataclass(slots=True)
class _Leaf:
    headers: dict[str, str]
    content_type: str
    params: dict[str, str]
    start: int
    end: int


class _Walk:
    """Finds the leaves of the MIME tree as offsets, counting parts and depth as it goes."""

    def __init__(self, raw: bytes, limits: Limits):
        self.raw, self.limits = raw, limits
        self.deadline = time.monotonic() + limits.max_seconds
        self.parts = 0
        self.leaves: list[_Leaf] = []

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise TooSlow(self.limits.max_seconds)

    def entity(self, start: int, end: int, depth: int, default: str, top: bool) -> None:
        self.parts += 1
        if self.parts > self.limits.max_parts:
            raise TooManyParts(self.limits.max_parts)
        if depth > self.limits.max_depth:
            raise TooDeep(self.limits.max_depth)
        self.tick()
        raw, limit = self.raw, self.limits.max_header_bytes
        stop = min(end, start + limit + 4)
        found = _blank_line(raw, start, stop)
        header_end, body = found if found else (stop, end)
        fields, used = _fields(raw[start:header_end], self.limits.max_headers, strict=not top)
        if start + used < header_end:  # a line that is no header: the body starts there
            body = start + used
        elif header_end - start > limit or (not found and stop < end):
            raise _header_too_large(limit)
        headers: dict[str, str] = {}
        for name, value in fields:
            headers.setdefault(name, value)
        content_type, params = fields_.params(headers.get("content-type"))
        if not _MIMETYPE.fullmatch(content_type):
            content_type = default
        if content_type.startswith("multipart/"):
            boundary = params.get("boundary", "")
            if 0 < len(boundary) <= 200:
                child = "message/rfc822" if content_type == "multipart/digest" else "text/plain"
                found_any = False
                for part_start, part_end in self.delimited(body, end, boundary):
                    found_any = True
                    self.entity(part_start, part_end, depth + 1, child, top=False)
                if found_any:
                    return
            content_type = "text/plain"  # no boundary or no part: read the body as text
        self.leaves.append(_Leaf(headers, content_type, params, body, end))

    def delimited(self, start: int, end: int, boundary: str) -> Iterator[tuple[int, int]]:
        """(start, end) of each part between boundary lines; an unclosed last part runs on."""
        raw = self.raw
        delimiter = re.compile(
            rb"\n--" + re.escape(boundary.encode("utf-8", "replace"))
            + rb"(--)?[ \t]*\r?(?=\n|\Z)")
        pos = max(start - 1, 0)  # a body starts after a line break: a boundary may open it
        part_start = None
        for m in delimiter.finditer(raw, pos, end):
            if part_start is not None:
                part_end = m.start() - (raw[m.start() - 1:m.start()] == b"\r")
                yield part_start, max(part_start, part_end)
            if m[1]:
                return
            part_start = min(m.end() + 1, end)
        if part_start is not None:
            yield part_start, end


def _transfer_decode(data: bytes, encoding: str) -> bytes:
    """Content-Transfer-Encoding undone, best effort: broken base64 keeps what decodes."""
    encoding = encoding.strip().lower()
    if encoding == "base64":
        return fields_.lenient_b64decode(data)
    if encoding == "quoted-printable":
        return binascii.a2b_qp(data)
    return data


def _attachment_name(leaf: _Leaf, data: bytes) -> str:
    name = leaf.params.get("name", "")
    disposition = fields_.params(leaf.headers.get("content-disposition"))[1]
    name = safe_name(disposition.get("filename") or name)
    if leaf.content_type in _MESSAGE_TYPES:
        if not name:
            try:
                subject = parse_head(data[:65536]).subject.replace("/", " ")
            except InboundError:  # an attached message's own headers may break our limits
                subject = ""
            name = safe_name(subject) or "message"
        if not name.lower().endswith(".eml"):
            name += ".eml"
    return name


def parse_body(raw: bytes, limits: Limits = Limits()) -> Body:
    """Text, HTML and attachments of a message; raises only InboundError subclasses."""
    if len(raw) > limits.max_bytes:
        raise TooLarge(len(raw), limits.max_bytes)
    walk = _Walk(raw, limits)
    walk.entity(0, len(raw), 0, "text/plain", top=True)
    text = html = None
    attachments: list[Part] = []
    for leaf in walk.leaves:
        walk.tick()
        headers, content_type = leaf.headers, leaf.content_type
        data = _transfer_decode(raw[leaf.start:leaf.end],
                                headers.get("content-transfer-encoding", ""))
        disposition = fields_.params(headers.get("content-disposition"))[0]
        name = _attachment_name(leaf, data) if leaf.start < leaf.end or headers else ""
        if content_type in ("text/plain", "text/html") and disposition != "attachment" \
                and not name:
            value = decode_text(data, leaf.params.get("charset"))
            if content_type == "text/plain" and text is None:
                text = value
                continue
            if content_type == "text/html" and html is None:
                html = value
                continue
        ids = _ids(headers.get("content-id", ""))
        content_id = ids[0][1:-1] if ids else ""
        why = danger(name, content_type, data)
        attachments.append(Part(
            filename=name, content_type=content_type, data=data, content_id=content_id,
            inline=disposition == "inline" or (not disposition and bool(content_id)),
            dangerous=bool(why), danger=why,
        ))
    return Body(text or "", html or "", attachments, walk.parts)

