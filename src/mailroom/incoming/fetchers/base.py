"""What every fetcher shares: the result, plain-words errors, and storing one message.

A fetcher lists what waits on the server, then for each message: skips it if it was already
stored (its source key, or — for IMAP after a UIDVALIDITY change — the same bytes from the same
server), refuses it if it is over the size limit (left on the server, named once in the error
and in the audit log), otherwise `accept()`s it. Only after that may the caller acknowledge it.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import ssl
from dataclasses import dataclass, field

from mailroom.core.models import AuditLog
from mailroom.core.services import audit
from mailroom.incoming import services
from mailroom.incoming.models import InboundMail, IncomingServer

log = logging.getLogger("mailroom.incoming.fetch")

MAX_PER_RUN = 500  # messages per run, so one huge mailbox cannot starve the worker
TIMEOUT = 60  # seconds for connecting and for each network read
TOO_LARGE_ACTION = "incoming.server.too_large"


class FetchError(Exception):
    """A fetch or connection test failed; the message is in plain words for the admin."""


@dataclass
class FetchResult:
    stored: int = 0  # new InboundMail rows
    acknowledged: int = 0  # messages marked read, moved or deleted on the server
    duplicates: int = 0  # already stored: acknowledged without storing again
    too_large: list[str] = field(default_factory=list)  # first seen this run, left on server
    more: bool = False  # the per-run limit was reached: more mail waits
    error: str = ""

    @property
    def problems(self) -> str:
        """The text record_fetch() keeps: the error, then the messages left behind."""
        parts = [self.error] if self.error else []
        if self.too_large:
            parts.append(
                f"Left on the server because they are over the size limit of "
                f"{services.max_message_bytes():,} bytes: {', '.join(self.too_large)}. "
                "Remove them there or raise MAILROOM_INBOUND_MAX_BYTES.")
        return " ".join(parts)


def plain_error(exc: BaseException, server: IncomingServer) -> str:
    """An exception from the network or a protocol library, in words an admin can act on."""
    where = f"{server.host}:{server.effective_port}"
    if isinstance(exc, FetchError):
        return str(exc)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (f"The certificate of {where} does not verify ({exc.verify_message}). "
                "If it is a private server, paste its CA certificate in the server settings.")
    if isinstance(exc, ssl.SSLError):
        return f"The secure connection to {where} failed ({exc.reason or exc})."
    if isinstance(exc, TimeoutError | socket.timeout):
        return f"The server {where} did not answer in time (timeout)."
    if isinstance(exc, socket.gaierror):
        return f"Cannot connect: the name {server.host} does not resolve."
    if isinstance(exc, ConnectionRefusedError):
        return f"Cannot connect to {where}: the connection was refused."
    if isinstance(exc, ConnectionError | EOFError):
        return f"The connection to {where} was closed unexpectedly; it will be tried again."
    if isinstance(exc, OSError):
        return f"Cannot connect to {where}: {exc.strerror or exc}."
    return f"{type(exc).__name__}: {exc}"


class Store:
    """Stores messages of one server for one run, and tallies what happened."""

    def __init__(self, server: IncomingServer, source: str, result: FetchResult,
                 *, dedupe_bytes: bool = False) -> None:
        self.server = server
        self.source = source
        self.result = result
        self.dedupe_bytes = dedupe_bytes
        self.limit = services.max_message_bytes()

    def known(self, key: str) -> bool:
        return InboundMail.objects.filter(source_key=key).exists()

    def refuse_if_too_large(self, key: str, size: int | None) -> bool:
        """True if the message must stay on the server (over the limit). It is reported
        (run error + audit row) the first time only; later runs skip it silently."""
        if size is None or size <= self.limit:
            return False
        reported = AuditLog.objects.filter(action=TOO_LARGE_ACTION,
                                           object_id=str(self.server.pk),
                                           after__key=key).exists()
        if not reported:
            audit(TOO_LARGE_ACTION, actor=None, obj=self.server, company=self.server.company,
                  after={"key": key, "size": size, "limit": self.limit})
            self.result.too_large.append(f"{key} ({size:,} bytes)")
            log.warning("server %s: %s is %s bytes, over the limit: left on the server",
                        self.server.pk, key, size)
        return True

    def store(self, key: str, raw: bytes) -> bool:
        """Store one message (or find it stored). True when the caller may acknowledge it;
        False when it is over the limit and must stay on the server."""
        if self.refuse_if_too_large(key, len(raw)):
            return False
        if self.known(key):
            self.result.duplicates += 1
            return True
        if self.dedupe_bytes:
            sha256 = hashlib.sha256(raw).hexdigest()
            if InboundMail.objects.filter(server=self.server, raw_sha256=sha256).exists():
                self.result.duplicates += 1
                return True
        services.accept(raw, company=self.server.company, source=self.source,
                        server=self.server, source_key=key)
        self.result.stored += 1
        return True
