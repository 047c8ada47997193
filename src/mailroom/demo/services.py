"""The demo floor's writers: the mail catcher stores what it receives, the seeder's outgoing
server points at it."""

from __future__ import annotations

import io

from django.conf import settings
from django.db import transaction

from mailroom.core.blobs import read_blob, store_blob
from mailroom.demo.catcher import Catcher
from mailroom.demo.models import CaughtMail
from mailroom.lib.inbound import InboundError, Limits, parse_head
from mailroom.outgoing.models import MailServer, OutgoingMail, Purpose
from mailroom.outgoing.server_services import run_connection_test, save_server

# the outgoing server `mailroom demo` creates; the Home page says so while it is the only one
DEMO_SERVER_NAME = "Demo: nothing leaves this machine"
DEFAULT_CATCHER = "127.0.0.1:2526"


def catcher_address() -> tuple[str, int]:
    """Where the catcher listens: MAILROOM_MAIL_CATCHER, else (when it is off) where it would."""
    value = settings.MAILROOM_MAIL_CATCHER.strip() or DEFAULT_CATCHER
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"MAILROOM_MAIL_CATCHER must be HOST:PORT, not {value!r}")
    return host.strip("[]"), int(port)


def catcher_enabled() -> bool:
    return bool(settings.MAILROOM_MAIL_CATCHER.strip())


def catch(raw: bytes, *, envelope_from: str, envelope_to: list[str]) -> CaughtMail:
    """Store one received message whole (blob store, then the row) and return its row.

    Called by the catcher's listener before it answers 250, so a mail the sender saw accepted
    is always on the Caught mail page. Actor: the system (nobody signs in to an SMTP port).
    """
    sha256, size = store_blob(io.BytesIO(raw), max_bytes=settings.MAILROOM_INBOUND_MAX_BYTES)
    try:
        head = parse_head(raw, Limits(max_bytes=settings.MAILROOM_INBOUND_MAX_BYTES))
        subject, message_id = head.subject, head.message_id
        header_from = head.get("from") or ""
    except InboundError:  # caught all the same: the page shows the raw bytes
        subject = message_id = header_from = ""
    sent = (OutgoingMail.objects.filter(message_id=message_id)
            .values_list("company_id", flat=True).first() if message_id else None)
    with transaction.atomic():
        return CaughtMail.objects.create(
            company_id=sent, envelope_from=envelope_from[:998],
            envelope_to=list(envelope_to), subject=subject[:998], header_from=header_from[:998],
            message_id=message_id[:998], sha256=sha256, size=size)


def create_demo_server(company) -> MailServer:
    """The demo company's outgoing server: the mail catcher on loopback, active, plain SMTP
    (security none is for loopback relays only) and no login.

    It starts transactional-only (that needs no test); then a real connection test runs
    against the catcher — the one already listening, or one started here for the moment —
    and once it passes the server takes bulk mail too (mass sending from a list), as any
    server may only after a passed test. Actor: the system, as for the rest of the seed.
    """
    host, port = catcher_address()
    server = save_server(MailServer(
        company=company, name=DEMO_SERVER_NAME, host=host, port=port,
        security=MailServer.Security.NONE, auth=MailServer.Auth.NONE,
        purpose=Purpose.TRANSACTIONAL, active=True, sequence=100, max_connections=2,
    ), actor=None)
    try:
        listener = Catcher(host, port, store=catch).start()
    except OSError:  # taken: the catcher of a running `mailroom run`, most likely
        listener = None
    try:
        report = run_connection_test(server, actor=None)
    finally:
        if listener is not None:
            listener.stop()
    if report.ok:
        server.purpose = Purpose.BOTH
        server = save_server(server, actor=None)
    return server


def is_demo_server(server: MailServer) -> bool:
    """The server `create_demo_server` made (where the catcher listens), whatever its name."""
    host, port = catcher_address()
    return server.host in (host, "localhost", "127.0.0.1", "::1") and server.port == port


def raw_bytes(mail: CaughtMail) -> bytes:
    return read_blob(mail.sha256)
