"""Delivery reports (bounces): which recipients failed, why, and which mail it was (no Django).

Standard reports are RFC 3464 multipart/report with a message/delivery-status part (one block
per recipient) and the returned original as message/rfc822 or text/rfc822-headers. Exim and
qmail still send plain text, and some relays only add X-Failed-Recipients, so those texts are
read too. The returned original's Message-ID and X-Mailroom-ID name the mail that bounced.

Only failed and delayed recipients are reported; a report whose recipients were all delivered
or relayed is no bounce (None). When a mail is clearly a bounce but names no readable
recipient, one recipient with address '' stands for "unknown" (the VERP address may still name
it); without a status it counts as soft, so an unreadable report never blacklists anyone.

Parsing is bounded (max_bytes, part and recipient limits, linear scans) and never raises: a
hostile or broken message gives None or what could be read.

Legacy formats (Yahoo, GroupWise, SMTP32, old Exchange, Netscape, Sendmail, old Postfix, qmail
variants…) are read by flufl.bounce's detectors after our own parsers
(:mod:`mailroom.lib.bounces_legacy`); delay warnings written as prose are delayed, never soft.
A mail from MAILER-DAEMON that names no failed recipient and shows no sign of a failure (no
report part, no SMTP error, no failure subject), such as a queue notice, is no bounce (None).

The result types and the hard/soft verdict live in :mod:`mailroom.lib.bounce_report`; they are
imported from here.
"""

from __future__ import annotations

import email
import email.parser
import email.policy
import re
import string
from dataclasses import dataclass, replace

from mailroom.lib import bounces_legacy as legacy
from mailroom.lib.autoreply import Headers, header, is_mailer_daemon, is_null_sender, oof_marker
from mailroom.lib.bounce_report import SMTP_CODE, STATUS, BounceReport, FailedRecipient, classify

__all__ = ["BounceReport", "FailedRecipient", "classify", "looks_like_bounce", "parse_bounce"]

MAX_PARTS = 200
MAX_RECIPIENTS = 500
MAX_TEXT = 200_000
MAX_DIAGNOSTIC = 500
_ACTIONS = ("failed", "delayed", "delivered", "relayed", "expanded")

_BOUNCE_SUBJECT = re.compile(
    r"^\s*(?:undelivered mail|undeliverable|undeliverable mail|mail delivery failed"
    r"|delivery status notification \((?:failure|delay)\)|failure notice|returned mail"
    r"|delivery failure|delivery has failed|delayed mail|mail system error"
    r"|nondeliverable mail|non remis|unzustellbar|non recapitabile|onbestelbaar"
    r"|no se puede entregar|warning: message \S+ delayed|delivery (?:status )?notification"
    r"|mail delivery (?:failure|problem|system)|permanent delivery failure"
    r"|non-?delivery(?:\s+(?:report|notification))?\s*:|message status\W+undeliverable"
    r"|mail could not be delivered|message (?:was )?not delivered|undelivered message"
    r"|returned mail)",
    re.IGNORECASE)
_COPY_MARKER = re.compile(
    r"^[ \t]*-+ ?(?:this is a copy of the message|the header of the original message"
    r"|below this line is a copy of the message|enclosed are the original headers"
    r"|original message (?:follows|headers)?|unsent message follows|returned message"
    r"|forwarded message)[^\n]*$", re.IGNORECASE | re.MULTILINE)
# A 4xx/5xx SMTP reply as reports quote it: at the start of a line ('<<< 550 …'), after
# 'said:' or a colon, or followed by an enhanced status; not any number ("1,450 messages").
_SMTP_FAILURE = re.compile(
    r"(?:^[\s<>*-]*|(?:said|reply|error)\s*:?\s*|:\s+)[45][0-5]\d[ -]"
    r"|(?:^|[\s(#\[])[45]\.\d{1,3}\.\d{1,3}(?![\d.])", re.IGNORECASE)
_EXIM = "this message was created automatically by mail delivery software"
_QMAIL = "this is the qmail-send program"
_DOMAIN = frozenset(string.ascii_letters + string.digits + ".-")
_ATOM = _DOMAIN | frozenset("!#$%&'*+/=?^_`{|}~")


def looks_like_bounce(headers: Headers, envelope_from: str = "") -> bool:
    """Whether the headers say delivery report (an out-of-office is not one)."""
    try:
        if _bounce_evidence(headers):
            return True
        if oof_marker(headers):
            return False
        submitted = header(headers, "Auto-Submitted").lower()
        precedence = header(headers, "Precedence").lower()
        if submitted.startswith("auto-replied") or precedence in ("bulk", "junk", "list",
                                                                  "auto_reply"):
            return False  # RFC 3834 auto-replies also use the null sender
        return is_null_sender(envelope_from, headers)
    except Exception:
        return False


def _bounce_evidence(headers: Headers) -> bool:
    ctype = header(headers, "Content-Type").lower()
    if "multipart/report" in ctype and re.search(r"report-type\s*=\s*\"?delivery-status", ctype):
        return True
    if header(headers, "X-Failed-Recipients"):
        return True
    if is_mailer_daemon(header(headers, "From")):
        return True
    return not oof_marker(headers) and bool(_BOUNCE_SUBJECT.match(header(headers, "Subject")))


def parse_bounce(raw: bytes, *, max_bytes: int = 10_000_000,
                 expected: bool = False) -> BounceReport | None:
    """The delivery report in `raw`, or None if it is none (or names no failed recipient).

    `expected`: the message reached an address that receives only delivery reports (the
    bounce address), so failed recipients found by the legacy detectors alone make it one.
    """
    try:
        data = bytes(memoryview(raw)[:max(0, int(max_bytes))])
        msg = email.message_from_bytes(data, policy=email.policy.compat32)
        return _parse(msg, data, expected)
    except Exception:  # hostile input must never reach the caller as a traceback
        return None


@dataclass
class _Scan:
    blocks: list[dict[str, str]]  # the delivery-status blocks, per-message block first
    dsn_found: bool
    original: email.message.Message | None  # headers of the returned original
    text: str  # the human-readable part(s), for non-standard reports


def _parse(msg: email.message.Message, data: bytes, expected: bool) -> BounceReport | None:
    scan = _scan(msg)
    per_message = scan.blocks[0] if scan.blocks else {}
    recipients, seen_recipient = _dsn_recipients(scan.blocks)
    if seen_recipient and not recipients:
        return None  # every recipient was delivered or relayed: a success notice
    from_prose = not recipients  # what follows reads the human-readable text
    report_text, copy_text = _split_copy(scan.text)
    lowered = report_text[:5000].lower()
    if not recipients and _EXIM in lowered:
        recipients = _exim(report_text)
    if not recipients and _QMAIL in lowered:
        recipients = _qmail(report_text)
    evidence = (scan.dsn_found or _EXIM in lowered or _QMAIL in lowered
                or _bounce_evidence(msg))
    legacy_found = False
    if not recipients and (evidence or expected):
        recipients = _generic(msg, report_text)
        permanent, temporary = legacy.failures(data)
        ours = len(recipients)
        recipients = _with_legacy(recipients, permanent, temporary, report_text)
        if not recipients:
            addresses, reason = legacy.domino(report_text)
            recipients = [_make(a, reason, "failed") for a in addresses]
        legacy_found = len(recipients) > ours
    if not (evidence or legacy_found):
        return None
    subject = header(msg, "Subject")
    warning = from_prose and legacy.is_warning(subject, report_text)
    if warning:  # a delay warning: whoever its prose names is still being tried
        recipients = [replace(r, action="delayed", kind="delayed") for r in recipients]
    if not recipients:
        if not _failure_evidence(msg, scan.dsn_found, lowered, report_text, subject):
            return None  # a notice from a mail server (queue status…), not a failure
        recipients = [_unknown(report_text, warning)]
    message_id, mailroom_id = _original_ids(msg, scan.original, per_message, copy_text)
    reporter = _reporter(msg, per_message, report_text, scan.dsn_found)
    if reporter == "unknown" and legacy_found:
        reporter = "legacy"
    return BounceReport(reporter=reporter, recipients=tuple(recipients[:MAX_RECIPIENTS]),
                        original_message_id=message_id, original_mailroom_id=mailroom_id)


def _with_legacy(recipients: list[FailedRecipient], permanent: list[str], temporary: list[str],
                 text: str) -> list[FailedRecipient]:
    """Our prose findings, with flufl.bounce's: its temporary failures are delayed, its
    permanent ones failed, classified hard or soft from the report's own words."""
    out = [replace(r, action="delayed", kind="delayed") if r.address in temporary else r
           for r in recipients]
    known = {r.address for r in out}
    for address, action in [(a, "failed") for a in permanent] + \
            [(a, "delayed") for a in temporary]:
        if address not in known:
            known.add(address)
            out.append(_make(address, legacy.context(text, address), action))
    return out


def _failure_evidence(msg: email.message.Message, dsn: bool, lowered: str, text: str,
                      subject: str) -> bool:
    """Signs that delivery failed, beyond who sent it (a queue notice comes from MAILER-DAEMON
    too): a report part, a known MTA's failure text, an SMTP error, a failure subject."""
    if dsn or _EXIM in lowered or _QMAIL in lowered or header(msg, "X-Failed-Recipients"):
        return True
    if _BOUNCE_SUBJECT.match(subject) and not legacy.is_warning(subject, ""):
        return True
    return any(_SMTP_FAILURE.search(line[:1000]) for line in text[:MAX_TEXT].split("\n")[:2000])


_DSN_TYPES = ("message/delivery-status", "text/delivery-status", "message/global-delivery-status")
_ORIGINAL_TYPES = ("message/rfc822", "message/global", "text/rfc822-headers",
                   "message/rfc822-headers", "message/global-headers")


def _scan(msg: email.message.Message) -> _Scan:
    """Read the report's parts (not the returned original's).

    The first delivery-status and original parts are found among all children of a multipart
    (a cheap type check), but only MAX_PARTS other parts are opened, so padding a report
    with thousands of parts neither hides it nor costs time.
    """
    scan = _Scan(blocks=[], dsn_found=False, original=None, text="")
    texts: list[str] = []
    html: list[str] = []
    size = 0
    stack, opened = [msg], 0
    while stack and opened < MAX_PARTS:
        part = stack.pop()
        opened += 1
        try:
            ctype = part.get_content_type()
            payload = part.get_payload()
            if ctype in _DSN_TYPES or ctype in _ORIGINAL_TYPES:
                _take(scan, part, ctype)
            elif isinstance(payload, list):
                children: list[email.message.Message] = []
                for child in payload:
                    if not isinstance(child, email.message.Message):
                        continue
                    kind = child.get_content_type()
                    if kind in _DSN_TYPES or kind in _ORIGINAL_TYPES:
                        _take(scan, child, kind)
                    elif len(children) < MAX_PARTS:
                        children.append(child)
                stack.extend(reversed(children))
            elif ctype in ("text/plain", "text/html") and size < MAX_TEXT:
                text = _decoded(part)[:MAX_TEXT - size]
                size += len(text)
                (texts if ctype == "text/plain" else html).append(text)
        except Exception:
            continue
    if not texts and html:
        texts = [re.sub(r"<[^>]{0,2000}>", " ", h) for h in html]
    scan.text = "\n".join(texts).replace("\r\n", "\n")
    return scan


def _take(scan: _Scan, part: email.message.Message, ctype: str) -> None:
    """Keep the first delivery-status part and the first returned original."""
    try:
        if ctype in _DSN_TYPES and not scan.dsn_found:
            scan.dsn_found = True
            scan.blocks = _dsn_blocks(part)
        elif ctype in _ORIGINAL_TYPES and scan.original is None:
            scan.original = _original_of(part)
    except Exception:
        pass


def _decoded(part: email.message.Message) -> str:
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return ""
    data = data[:MAX_TEXT * 4]
    try:
        return data.decode(part.get_content_charset() or "utf-8", "replace")
    except (LookupError, ValueError):
        return data.decode("latin-1")


def _fields(text: str) -> dict[str, str]:
    """'Name: value' lines with folded continuations; the first of a repeated name wins."""
    fields: dict[str, str] = {}
    name = ""
    for line in text.split("\n")[:200]:
        if line[:1] in (" ", "\t") and name:
            fields[name] += " " + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            name = key.strip().lower()
            if name in fields:
                name = ""
            else:
                fields[name] = value.strip()
        else:
            name = ""
    return fields


def _dsn_blocks(part: email.message.Message) -> list[dict[str, str]]:
    payload = part.get_payload()
    blocks: list[dict[str, str]] = []
    if isinstance(payload, list):  # the stdlib parses message/delivery-status into blocks
        for block in payload[:MAX_RECIPIENTS + 1]:
            if not isinstance(block, email.message.Message):
                continue  # not reached: the stdlib parses each block into a Message
            fields: dict[str, str] = {}
            for key, value in block.items()[:200]:
                fields.setdefault(str(key).strip().lower(), " ".join(str(value).split()))
            blocks.append(fields)
        return blocks
    text = _decoded(part) if part.get("Content-Transfer-Encoding") else str(payload)
    text = text[:MAX_TEXT].replace("\r\n", "\n")
    for chunk in re.split(r"\n[ \t]*\n", text)[:MAX_RECIPIENTS + 1]:
        if chunk.strip():
            blocks.append(_fields(chunk.strip("\n")))
    return blocks


def _dsn_recipients(blocks: list[dict[str, str]]) -> tuple[list[FailedRecipient], bool]:
    """(failed or delayed recipients, whether any recipient block was seen at all)."""
    out: list[FailedRecipient] = []
    seen = False
    for block in blocks:
        if not any(k in block for k in ("final-recipient", "original-recipient", "action")):
            continue
        seen = True
        diagnostic = _diagnostic(block.get("diagnostic-code", "").partition(";")[2]
                                 or block.get("diagnostic-code", ""))
        found = STATUS.search(block.get("status", "")) or STATUS.search(diagnostic)
        status = found.group(0) if found else ""
        action = (block.get("action", "").split() or [""])[0].lower()
        if action not in _ACTIONS:
            action = {"2": "delivered", "4": "delayed"}.get(status[:1], "failed")
        if action not in ("failed", "delayed"):
            continue
        address = _recipient(block.get("original-recipient", "")) \
            or _recipient(block.get("final-recipient", ""))
        out.append(FailedRecipient(address, status, action, diagnostic,
                                   classify(status, diagnostic, action)))
    return out, seen


def _recipient(value: str) -> str:
    """The address of 'rfc822; Jane@Example.org' ('' unless it looks like an address)."""
    found = _addresses(value.partition(";")[2] if ";" in value else value)
    return found[0] if found else ""


def _addresses(text: str, limit: int = 20) -> list[str]:
    """Addresses in text, lowercased, found around each '@' (linear, unlike a regex)."""
    out: list[str] = []
    at = text.find("@")
    while at != -1 and len(out) < limit:
        start = at
        while start > 0 and at - start < 64 and text[start - 1] in _ATOM:
            start -= 1
        end = at + 1
        while end < len(text) and end - at < 255 and text[end] in _DOMAIN:
            end += 1
        local, domain = text[start:at].strip("."), text[at + 1:end].strip(".-")
        if local and "." in domain:
            address = f"{local}@{domain}".lower()
            if address not in out:
                out.append(address)
        at = text.find("@", end)
    return out


def _diagnostic(text: str) -> str:
    """One line, without the repeated '550-5.1.1' prefixes of a multi-line SMTP reply."""
    text = " ".join(text[:4000].split())
    lead = re.match(r"([245]\d\d)[- ](?:([245]\.\d{1,3}\.\d{1,3}) )?", text)
    if lead:
        status = re.escape(lead.group(2)) + " " if lead.group(2) else ""
        rest = re.sub(rf" {lead.group(1)}[- ]{status}", " ", text[lead.end():])
        text = f"{lead.group(1)} {lead.group(2) + ' ' if lead.group(2) else ''}{rest}"
        text = " ".join(text.split())
    return text[:MAX_DIAGNOSTIC]


def _split_copy(text: str) -> tuple[str, str]:
    found = _COPY_MARKER.search(text)
    return (text[:found.start()], text[found.end():]) if found else (text, "")


def _make(address: str, detail: list[str], action: str) -> FailedRecipient:
    """A recipient from a plain-text report: the SMTP reply after 'said:' if there is one."""
    joined = " ".join(" ".join(detail).split())
    said = re.search(r"(?:remote host said|said|remote mail server[^:]{0,80}?:[^:]{0,300}?:)"
                     r"\s*:?\s*(?=[245]\d\d)", joined, re.IGNORECASE)
    diagnostic = _diagnostic(joined[said.end():] if said else joined)
    found = STATUS.search(diagnostic)
    status = found.group(0) if found else ""
    return FailedRecipient(address, status, action, diagnostic,
                           classify(status, diagnostic, action))


def _exim(text: str) -> list[FailedRecipient]:
    """Exim: each failed address indented two spaces, its details indented further."""
    action = "delayed" if "has not yet been delivered" in text[:5000].lower() else "failed"
    out: list[FailedRecipient] = []
    current = ""
    detail: list[str] = []
    for line in text.split("\n")[:5000]:
        line = line.rstrip()
        indent = len(line) - len(line.lstrip(" "))
        found = _addresses(line, 1) if indent in (1, 2, 3) else []
        if found and line.strip().strip("<>:").lower() == found[0]:
            if current:
                out.append(_make(current, detail, action))
            current, detail = found[0], []
        elif current and indent >= 4:
            detail.append(line)
        elif current and line.strip():
            out.append(_make(current, detail, action))
            current, detail = "", []
    if current:
        out.append(_make(current, detail, action))
    return out


def _qmail(text: str) -> list[FailedRecipient]:
    """qmail: '<addr>:' on its own line, the reasons on the lines below until a blank line."""
    out: list[FailedRecipient] = []
    current = ""
    detail: list[str] = []
    for line in text.split("\n")[:5000] + [""]:
        stripped = line.strip()
        head = re.fullmatch(r"<([^<>\s]{1,320})>:", stripped[:330])
        if head and _addresses(head.group(1), 1):
            if current:
                out.append(_make(current, detail, "failed"))
            current, detail = _addresses(head.group(1), 1)[0], []
        elif current and stripped:
            if not stripped.lower().startswith("giving up on"):
                detail.append(stripped)
        elif current:
            out.append(_make(current, detail, "failed"))
            current, detail = "", []
    return out


def _generic(msg: email.message.Message, text: str) -> list[FailedRecipient]:
    """X-Failed-Recipients, and paragraphs holding an SMTP error and an address."""
    out: list[FailedRecipient] = []
    paragraphs = [p for p in re.split(r"\n[ \t]*\n", text[:MAX_TEXT])[:2000]
                  if SMTP_CODE.search(p) and "@" in p]
    for paragraph in paragraphs:
        found = _addresses(paragraph, 1)
        if found and all(r.address != found[0] for r in out):
            out.append(_make(found[0], paragraph.split("\n"), "failed"))
    for address in _addresses(header(msg, "X-Failed-Recipients"), MAX_RECIPIENTS):
        if all(r.address != address for r in out):  # the first SMTP error, if any, says why
            out.append(_make(address, paragraphs[0].split("\n") if paragraphs else [], "failed"))
    return out


def _unknown(text: str, warning: bool = False) -> FailedRecipient:
    """A bounce naming nobody readable: soft unless the text carries an SMTP error; a delay
    warning naming nobody is delayed."""
    action = "delayed" if warning else "failed"
    for line in text.split("\n")[:2000]:
        if SMTP_CODE.search(line[:1000]):
            return _make("", [line[:1000]], action)
    return FailedRecipient("", "", action, "", "delayed" if warning else "soft")


def _original_of(part: email.message.Message) -> email.message.Message | None:
    payload = part.get_payload()
    if isinstance(payload, list):
        return payload[0] if payload and isinstance(payload[0], email.message.Message) else None
    text = _decoded(part) or (payload if isinstance(payload, str) else "")
    return email.parser.HeaderParser(policy=email.policy.compat32).parsestr(text[:MAX_TEXT])


def _message_id(value: str) -> str:
    found = re.search(r"<[^<>\s]{1,900}>", value)
    if found:
        return found.group(0)
    token = value.strip().split(" ")[0][:900] if value.strip() else ""
    return f"<{token}>" if "@" in token else ""


def _original_ids(msg: email.message.Message, original: email.message.Message | None,
                  per_message: dict[str, str], copy: str) -> tuple[str, str]:
    message_id = _message_id(header(original, "Message-ID")) if original is not None else ""
    mailroom_id = header(original, "X-Mailroom-ID") if original is not None else ""
    if copy and (not message_id or not mailroom_id):
        quoted = email.parser.HeaderParser(policy=email.policy.compat32).parsestr(
            copy.lstrip("\n")[:MAX_TEXT])
        message_id = message_id or _message_id(header(quoted, "Message-ID"))
        mailroom_id = mailroom_id or header(quoted, "X-Mailroom-ID")
    message_id = message_id or _message_id(per_message.get("x-original-message-id", ""))
    message_id = message_id or _message_id(header(msg, "In-Reply-To"))
    return message_id, (mailroom_id.split() or [""])[0][:200]


def _reporter(msg: email.message.Message, per_message: dict[str, str], text: str,
              dsn: bool) -> str:
    mta = per_message.get("reporting-mta", "").lower()
    sender = header(msg, "From").lower()
    lowered = text[:5000].lower()
    if (any(str(k).lower().startswith("x-ms-exchange") for k in msg.keys()[:300])
            or "outlook.com" in mta or "exchangelabs" in mta or "microsoft exchange" in lowered):
        return "exchange"
    if "googlemail.com" in mta or "google.com" in mta or "@googlemail.com" in sender:
        return "gmail"
    if "x-postfix-queue-id" in per_message or "this is the mail system at host" in lowered:
        return "postfix"
    if _EXIM in lowered or "x-exim-diagnostic" in str(per_message):
        return "exim"
    if _QMAIL in lowered:
        return "qmail"
    return "dsn" if dsn else "unknown"
