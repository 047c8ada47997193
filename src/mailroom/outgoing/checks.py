"""What the sender will accept, checked when a mail is queued.

`services.enqueue` runs these checks on every mail, whoever queues it (API, composer,
automation, replies), so a value the sender would refuse later — a header it cannot fold, a
Content-ID with a line separator, a 65-character local part, a header Mailroom writes itself —
is refused at once with `Unsendable`, a ValidationError naming the field the way the API
names it (`to.0.address`, `headers.X-Tag`, `attachments.1.content_id`). The rules are the
builder's own (lib.mime, lib.addresses), so what passes here can be built and sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from email.utils import getaddresses, parseaddr

from django.core.exceptions import ValidationError

from mailroom.lib import mime
from mailroom.lib.addresses import LOCAL_PART_MAX, InvalidAddress, sendable_email

# Headers Mailroom writes from the mail's own fields, or adds while sending: a caller's
# headers may not set them. (The only list: the API refuses what enqueue refuses.)
RESERVED_HEADERS = frozenset({
    "from", "sender", "to", "cc", "bcc", "reply-to", "subject", "date", "message-id",
    "return-path", "received", "mime-version", "content-type", "content-transfer-encoding",
    "content-disposition", "content-id", "dkim-signature", "x-mailroom-id",
})
HEADER_NAME_MAX = 76
# RFC 3834: Auto-Submitted is "no", "auto-generated", "auto-replied" or an "auto-" extension,
# with optional parameters. A caller may set it (an auto-reply says "auto-replied").
_AUTO_SUBMITTED = re.compile(r"(?i)(no|auto-[a-z0-9-]+)\s*(;.*)?")
_FORBIDDEN = ("\r", "\n", "\0")
_HEADER_NAME = re.compile(r"[!-9;-~]+", re.ASCII)  # RFC 5322 ftext


class Unsendable(ValidationError):
    """A value the sender could not send; `message_dict` names each field."""


def refuse(field: str, message: str) -> Unsendable:
    return Unsendable({field: message})


def one_line(field: str, value: str) -> str:
    """CR, LF or NUL in a header value would let a caller inject headers: refuse, naming it."""
    if value and any(ch in value for ch in _FORBIDDEN):
        raise refuse(field, "Line breaks and NUL are not allowed in this field.")
    return value or ""


def address(field: str, value: str) -> str:
    """The canonical form of an address the sender can send to (or from)."""
    one_line(field, value)
    try:
        return sendable_email(value)
    except InvalidAddress as exc:
        raise refuse(field, f"{value!r}: {exc}") from exc


def own_address(field: str, value: str) -> str:
    """An address of ours (From, Reply-To): what the builder can write and SMTP carries. The
    company's own domain may be one email-validator calls special-use (`acme.test`)."""
    try:
        mime.encode_address(value, smtputf8=True, field=field)
    except ValueError as exc:
        raise refuse(field, f"{value!r} is not a valid address.") from exc
    local = value.rpartition("@")[0]
    if len(local.encode("utf-8")) > LOCAL_PART_MAX:
        raise refuse(field, f"{value!r}: the part before the @ is too long; mail servers "
                            f"accept at most {LOCAL_PART_MAX} characters.")
    return value


def mailbox(field: str, value: str) -> str:
    """A From-style value ("Name <addr>" or "addr"), as compose will parse it."""
    one_line(field, value)
    _, found = parseaddr(value)
    if "@" not in found:
        raise refuse(field, f"{value!r} is not a valid address.")
    own_address(field, found)
    return value


def mailboxes(field: str, value: str) -> str:
    """A Reply-To value: one or more mailboxes."""
    one_line(field, value)
    found = [a for _, a in getaddresses([value]) if a] if value else []
    if value and not found:
        raise refuse(field, f"{value!r} is not a valid address.")
    for item in found:
        own_address(field, item)
    return value


def headers(values: Mapping[str, str], *, is_automatic: bool = False) -> dict[str, str]:
    """Extra headers: valid names, none Mailroom writes itself, values the builder can write
    (an ASCII word longer than a line cannot be folded)."""
    for name, value in values.items():
        if len(name) > HEADER_NAME_MAX or not _HEADER_NAME.fullmatch(name):
            raise refuse("headers", f"{name!r} is not a valid header name (printable ASCII, "
                                    f"no colon or space, at most {HEADER_NAME_MAX} characters).")
        field = f"headers.{name}"
        one_line(field, value)
        if name.lower() in RESERVED_HEADERS:
            raise refuse(field, f"Mailroom writes {name} itself; use the email's own fields.")
        if name.lower() == "auto-submitted":
            if not _AUTO_SUBMITTED.fullmatch(value.strip()):
                raise refuse(field, "Use no, auto-generated or auto-replied (RFC 3834).")
            if is_automatic and value.strip().lower().startswith("no"):
                raise refuse(field, "An automatic email cannot say Auto-Submitted: no.")
        try:
            mime.header_line(name, value)
        except ValueError as exc:
            raise refuse(field, f"This value cannot be written in an email header ({exc}); "
                                "put a space in long values, or shorten them.") from exc
    return dict(values)


def attachment(index: int, name: str, mimetype: str, content_id: str) -> None:
    one_line(f"attachments.{index}.name", name)
    one_line(f"attachments.{index}.mimetype", mimetype)
    if content_id:
        try:
            mime.check_content_id(content_id)
        except ValueError as exc:
            raise refuse(f"attachments.{index}.content_id",
                         "A Content-ID must be printable ASCII without spaces or line "
                         "breaks.") from exc
