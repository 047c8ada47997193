"""What an SMTP server answered, in the words the hub, the circuit breaker and the connection
test share: per-recipient results, the stage a conversation failed at, and the reply codes
turned into a FailureType with a reason in plain words. Pure: no sockets, no database."""

from __future__ import annotations

import base64
import re
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field

from mailroom.outgoing.models import FailureType

# stages, in the order a conversation goes through them
DNS, TCP, TLS, AUTH, SENDER, RECIPIENT, DATA, OK = (
    "dns", "tcp", "tls", "auth", "sender", "recipient", "data", "ok")

_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")


class SmtpError(Exception):
    """The conversation with the server failed as a whole.

    `server_fault` is True when the server itself could not be used (DNS, TCP, TLS, auth,
    greeting): the sender fails over to another server and the circuit breaker counts it.
    Otherwise the connection was lost or refused mid-transaction; the message is retried.
    """

    def __init__(self, stage: str, failure_type: str, message: str, *, code: int | None = None,
                 reply: str = "", temporary: bool = True, server_fault: bool = False) -> None:
        super().__init__(message)
        self.stage = stage
        self.failure_type = failure_type
        self.message = message
        self.code = code
        self.reply = reply
        self.temporary = temporary
        self.server_fault = server_fault


@dataclass
class RecipientResult:
    address: str
    accepted: bool
    code: int | None = None
    reply: str = ""
    temporary: bool = False
    failure_type: str = ""
    reason: str = ""


@dataclass
class SendResult:
    """What happened to one message: one result per envelope recipient."""

    recipients: list[RecipientResult]
    code: int | None = None  # the reply that decided the message
    reply: str = ""
    duration_ms: int = 0

    @property
    def accepted(self) -> list[RecipientResult]:
        return [r for r in self.recipients if r.accepted]


@dataclass
class ConnectionReport:
    """The outcome of `test_connection`, for the server form."""

    ok: bool
    stage: str  # dns, tcp, tls, auth, sender, recipient, ok
    message: str
    size_limit: int | None = None
    transcript: list[str] = field(default_factory=list)


def _decode(reply: bytes | str) -> str:
    if isinstance(reply, bytes):
        reply = reply.decode("utf-8", "replace")
    return " ".join(reply.split())[:1000]


def _enhanced(reply: str) -> tuple[int, int, int] | None:
    match = _ENHANCED.match(reply)
    return tuple(int(x) for x in match.groups()) if match else None  # type: ignore[return-value]


def classify_reply(stage: str, code: int, reply: str) -> tuple[str, bool]:
    """(failure type, temporary) for a negative reply at `stage`."""
    temporary = 400 <= code < 500
    enhanced = _enhanced(reply)
    if code == 552 and stage in (SENDER, DATA) or enhanced and enhanced[1:] == (3, 4):
        return FailureType.TOO_LARGE, temporary
    if code == 421:
        return FailureType.UNREACHABLE, True
    if code in (530, 535, 538) or enhanced and enhanced[1:] in ((7, 0), (7, 8), (7, 9)) \
            and stage == SENDER:
        return FailureType.AUTHENTICATION, temporary
    if stage == SENDER:
        return FailureType.REFUSED_SENDER, temporary
    if stage == RECIPIENT and (code in (550, 551, 553, 501)
                               or enhanced and enhanced[1] == 1):
        return (FailureType.REJECTED if temporary else FailureType.INVALID_RECIPIENT), temporary
    return FailureType.REJECTED, temporary


def _reason(stage: str, code: int, reply: str, address: str = "") -> str:
    when = "for now, it will be retried" if 400 <= code < 500 else "permanently"
    what = {
        SENDER: "The server refused the sender address",
        RECIPIENT: f"The server refused the recipient {address}",
        DATA: "The server refused the message",
    }.get(stage, "The server refused")
    return f"{what} {when}: {code} {reply}".strip()


def recipient_result(address: str, code: int, reply: bytes) -> RecipientResult:
    text = _decode(reply)
    if code in (250, 251):
        return RecipientResult(address, True, code, text)
    failure_type, temporary = classify_reply(RECIPIENT, code, text)
    return RecipientResult(address, False, code, text, temporary, failure_type,
                           _reason(RECIPIENT, code, text, address))


def closing(results: list[RecipientResult], rcpts: Sequence[str]) -> SendResult:
    """421 during RCPT: the server is closing before DATA, so nothing was delivered; the
    recipients it had accepted and those not reached wait too."""
    last = results[-1]
    waiting = [RecipientResult(r.address, False, last.code, last.reply, True, last.failure_type,
                               last.reason) for r in results[:-1]]
    waiting.append(last)
    waiting += [RecipientResult(a, False, last.code, last.reply, True, last.failure_type,
                                last.reason) for a in rcpts[len(results):]]
    return SendResult(waiting, last.code, last.reply)


_LEADING_DOT = re.compile(rb"(?m)^\.")


def dot_stuffed(raw: bytes) -> bytes:
    """The DATA content as sent: leading dots doubled, CRLF at the end, then the lone dot."""
    body = _LEADING_DOT.sub(b"..", raw)
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    return body + b".\r\n"


def _underlying(exc: BaseException) -> BaseException:
    """The socket/TLS error beneath smtplib's SMTPServerDisconnected, if any."""
    seen = exc
    while seen is not None:
        if isinstance(seen, (ssl.SSLError, TimeoutError, ConnectionError)):
            return seen
        seen = seen.__cause__ or seen.__context__
    return exc


def _human_size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    if size >= 1024:
        return f"{size / 1024:.0f} kB"
    return f"{size} bytes"


def _xoauth2_error(text: str) -> str:
    """Gmail and Microsoft explain an XOAUTH2 refusal in a base64 JSON challenge."""
    try:
        return base64.b64decode(text, validate=True).decode("utf-8", "replace")
    except ValueError:
        return text
