"""Test connection: everything short of sending, with a verdict in plain words."""

from __future__ import annotations

import smtplib

from mailroom.outgoing.models import MailServer
from mailroom.outgoing.smtp.smtp_errors import (
    OK,
    RECIPIENT,
    SENDER,
    ConnectionReport,
    SmtpError,
    _human_size,
    _reason,
)
from mailroom.outgoing.smtp.transport import SmtpConnection, SslContextSource


def _test_addresses(server: MailServer) -> tuple[str, str]:
    """Who to name in MAIL FROM / RCPT TO when testing: an address the from-filter allows."""
    for entry in server.filter_entries():
        if "@" in entry:
            return entry, entry
    for entry in server.filter_entries():
        return f"postmaster@{entry.lstrip('@')}", f"postmaster@{entry.lstrip('@')}"
    if "@" in server.username:
        return server.username, server.username
    return "postmaster@mailroom.invalid", "postmaster@mailroom.invalid"


def test_connection(server: MailServer, *, ssl_context: SslContextSource = None,
                    timeout: float = 15, sender: str = "",
                    recipient: str = "") -> ConnectionReport:
    """Connect, negotiate TLS, authenticate, then MAIL FROM / RCPT TO / RSET without sending.

    Says precisely what failed, in plain words; never raises for a server problem.
    """
    default_sender, default_recipient = _test_addresses(server)
    sender, recipient = sender or default_sender, recipient or default_recipient
    connection = SmtpConnection(server, timeout=timeout, ssl_context=ssl_context, record=True)
    try:
        connection.open()
    except SmtpError as exc:
        return ConnectionReport(False, exc.stage, exc.message, connection.size_limit,
                                connection.transcript)
    smtp = connection.smtp
    size = connection.size_limit
    if server.max_message_size:
        size = min(x for x in (size, server.max_message_size) if x)
    try:
        connection._log(f"C: MAIL FROM:<{sender}>")
        code, reply = smtp.mail(sender)
        text = connection._reply(code, reply)
        if code != 250:
            return ConnectionReport(False, SENDER, _reason(SENDER, code, text), size,
                                    connection.transcript)
        connection._log(f"C: RCPT TO:<{recipient}>")
        code, reply = smtp.rcpt(recipient)
        text = connection._reply(code, reply)
        if code not in (250, 251):
            return ConnectionReport(False, RECIPIENT, _reason(RECIPIENT, code, text, recipient),
                                    size, connection.transcript)
        connection._log("C: RSET")
        code, reply = smtp.rset()
        connection._reply(code, reply)
    except (smtplib.SMTPException, OSError) as exc:
        return ConnectionReport(False, SENDER, f"The connection broke during the test: {exc}",
                                size, connection.transcript)
    finally:
        connection.close()
    steps = ["Connected"]
    if server.security != MailServer.Security.NONE:
        steps.append("encrypted (certificate verified)" if server.verify_certificate
                     else "encrypted (certificate NOT verified)")
    if server.auth != MailServer.Auth.NONE:
        steps.append("authenticated")
    limit = f", messages up to {_human_size(size)}" if size else ""
    return ConnectionReport(True, OK, f"{', '.join(steps)}; the server accepts mail from "
                            f"{sender}{limit}.", size, connection.transcript)


test_connection.__test__ = False  # type: ignore[attr-defined]  # not a pytest test
