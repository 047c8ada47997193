"""Feedback reports (ARF, RFC 5965): a receiver says a recipient marked our mail as spam.

A report is `multipart/report; report-type=feedback-report` with three parts: words for
people, the machine-readable `message/feedback-report` (Feedback-Type, User-Agent, Version,
Original-Mail-From, Original-Rcpt-To, Arrival-Date, Source-IP, Reported-Domain…) and the
returned original, whole (message/rfc822) or its headers only (text/rfc822-headers, as
Microsoft's JMRP sends). The original's X-Mailroom-ID and Message-ID name our mail.

Receivers redact: Yahoo and AOL replace the recipient's address in the original, Microsoft
leaves Original-Rcpt-To out but adds X-HmXmrOriginalRecipient. So the recipient is read from
Original-Rcpt-To, then that Microsoft header, then the original's To; the caller matches it
against the mail (a campaign mail has one recipient, so a redacted one is found anyway).

No library on PyPI keeps up with ARF (arf-mime was last released in 2020); the format is
three MIME parts and header fields, so the standard library reads it. Parsing is bounded
and never raises: anything unreadable gives None, or the fields that could be read.
"""

from __future__ import annotations

import email
import email.parser
import email.policy
import re
from dataclasses import dataclass
from email.message import Message
from email.utils import getaddresses

from mailroom.lib.autoreply import Headers, header

__all__ = ["FeedbackReport", "is_feedback_report", "parse_feedback"]

MAX_PARTS = 50
MAX_FIELDS_TEXT = 50_000
MAX_RECIPIENTS = 50
# the feedback types of RFC 5965 and RFC 6591; a receiver's own word is kept as it is
COMPLAINT_TYPES = ("abuse", "fraud", "virus", "other", "auth-failure")
_REPORT_TYPE = re.compile(r"report-type\s*=\s*\"?feedback-report", re.IGNORECASE)
_ORIGINAL_TYPES = ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers",
                   "message/global", "message/global-headers")
_ADDRESS = re.compile(r"[^\s<>\"'(),;:@]{1,64}@[A-Za-z0-9.-]{1,253}")


@dataclass(frozen=True)
class FeedbackReport:
    feedback_type: str  # lower-case: abuse, fraud, virus, other, not-spam, opt-out…
    user_agent: str  # the receiver's software, e.g. "Yahoo!-Mail-Feedback/2.0"
    original_mail_from: str
    original_rcpt_to: tuple[str, ...]  # lower-case; empty when the receiver redacted it
    arrival_date: str
    source_ip: str
    reported_domain: str
    original_message_id: str  # "<…>" or ""
    original_mailroom_id: str
    original_subject: str

    @property
    def is_complaint(self) -> bool:
        """Abuse and its kin; "not-spam" (a user took a mail out of the spam folder) is not."""
        return self.feedback_type not in ("not-spam",)

    @property
    def reporter(self) -> str:
        """Who sent the report, in a word, for the log."""
        agent = self.user_agent.split("/")[0].strip()
        return agent or self.reported_domain or "a mailbox provider"

    def describe(self) -> str:
        """One line for a person: "abuse report from Yahoo!-Mail-Feedback (arrived …)"."""
        words = f"{self.feedback_type or 'abuse'} report from {self.reporter}"
        if self.arrival_date:
            words += f" (our mail arrived {self.arrival_date})"
        return words


def is_feedback_report(headers: Headers) -> bool:
    """Whether the top-level Content-Type says feedback report."""
    ctype = header(headers, "Content-Type")
    return "multipart/report" in ctype.lower() and bool(_REPORT_TYPE.search(ctype))


def parse_feedback(raw: bytes, *, max_bytes: int = 10_000_000) -> FeedbackReport | None:
    """The feedback report in `raw`, or None when it is none."""
    try:
        data = bytes(memoryview(raw)[:max(0, int(max_bytes))])
        msg = email.message_from_bytes(data, policy=email.policy.compat32)
        if not is_feedback_report(msg):
            return None
        return _parse(msg)
    except Exception:  # hostile input must never reach the caller as a traceback
        return None


def _parse(msg: Message) -> FeedbackReport | None:
    fields: Message | None = None
    original: Message | None = None
    parts = msg.get_payload()
    if not isinstance(parts, list):
        return None
    for part in parts[:MAX_PARTS]:
        if not isinstance(part, Message):
            continue
        ctype = part.get_content_type()
        if ctype == "message/feedback-report" and fields is None:
            fields = _header_block(part)
        elif ctype in _ORIGINAL_TYPES and original is None:
            original = _original(part)
    if fields is None:
        return None
    recipients = _addresses(fields.get_all("Original-Rcpt-To") or [])
    if not recipients and original is not None:
        recipients = _addresses(original.get_all("X-HmXmrOriginalRecipient") or []) \
            or _addresses(original.get_all("To") or [])
    mailroom_id = header(original, "X-Mailroom-ID") if original is not None else ""
    return FeedbackReport(
        feedback_type=header(fields, "Feedback-Type").strip().lower()[:40] or "abuse",
        user_agent=header(fields, "User-Agent")[:200],
        original_mail_from=(_addresses([header(fields, "Original-Mail-From")]) or ("",))[0],
        original_rcpt_to=recipients,
        arrival_date=(header(fields, "Arrival-Date") or header(fields, "Received-Date"))[:100],
        source_ip=header(fields, "Source-IP").strip()[:64],
        reported_domain=header(fields, "Reported-Domain").strip().lower()[:253],
        original_message_id=_message_id(header(original, "Message-ID"))
        if original is not None else "",
        original_mailroom_id=(mailroom_id.split() or [""])[0][:200],
        original_subject=header(original, "Subject")[:300] if original is not None else "",
    )


def _text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return payload[:MAX_FIELDS_TEXT].decode(part.get_content_charset() or "utf-8",
                                                "replace")
    inner = part.get_payload()  # compat32 parses message/* parts into a list of messages
    if isinstance(inner, list) and inner and isinstance(inner[0], Message):
        return inner[0].as_string()[:MAX_FIELDS_TEXT]
    return str(inner or "")[:MAX_FIELDS_TEXT]


def _header_block(part: Message) -> Message:
    """The feedback fields as headers (email parses message/feedback-report as a message)."""
    inner = part.get_payload()
    if isinstance(inner, list) and inner and isinstance(inner[0], Message):
        return inner[0]
    return _headers_of(_text(part))


def _original(part: Message) -> Message:
    inner = part.get_payload()
    if part.get_content_type().startswith("message/") and isinstance(inner, list) and inner \
            and isinstance(inner[0], Message):
        return inner[0]
    return _headers_of(_text(part))


def _headers_of(text: str) -> Message:
    text = text.replace("\r\n", "\n").lstrip("\n")
    return email.parser.HeaderParser(policy=email.policy.compat32).parsestr(text)


def _addresses(values: list[str]) -> tuple[str, ...]:
    found: list[str] = []
    try:
        pairs = getaddresses([str(v)[:2000] for v in values[:MAX_RECIPIENTS]])
    except Exception:
        pairs = []
    for _, address in pairs:
        match = _ADDRESS.fullmatch(address.strip().strip("<>"))
        if match and match.group(0).lower() not in found:
            found.append(match.group(0).lower())
    return tuple(found[:MAX_RECIPIENTS])


def _message_id(value: str) -> str:
    found = re.search(r"<[^<>\s]{1,900}>", value)
    if found:
        return found.group(0)
    token = value.strip().split(" ")[0][:900] if value.strip() else ""
    return f"<{token}>" if "@" in token else ""
