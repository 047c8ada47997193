"""A gateway configured from the MAILROOM_GATEWAY_* settings (used by `mailroom gateway`)."""

from __future__ import annotations

import ssl

from django.conf import settings
from django.db import connection

from mailroom.incoming import intake
from mailroom.incoming.gateway.listeners import Gateway, Limits, parse_listen
from mailroom.incoming.services import max_message_bytes


def tls_context(cert: str, key: str) -> ssl.SSLContext | None:
    """The server context for STARTTLS, or None when no certificate is configured."""
    if not cert and not key:
        return None
    if not (cert and key):
        raise ValueError("Set both MAILROOM_GATEWAY_TLS_CERT and MAILROOM_GATEWAY_TLS_KEY.")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"Cannot load the TLS certificate {cert} / key {key}: {exc}") from exc
    return context


def gateway_from_settings(smtp: str | None = None, lmtp: str | None = None,
                          db_threads: int | None = None) -> Gateway:
    """A Gateway configured from MAILROOM_GATEWAY_* (arguments override); ValueError when the
    configuration is wrong."""
    smtp_listen = parse_listen(settings.MAILROOM_GATEWAY_SMTP if smtp is None else smtp)
    lmtp_listen = parse_listen(settings.MAILROOM_GATEWAY_LMTP if lmtp is None else lmtp)
    if smtp_listen is None and lmtp_listen is None:
        raise ValueError("Nothing to listen on: MAILROOM_GATEWAY_SMTP and "
                         "MAILROOM_GATEWAY_LMTP are both empty.")
    return Gateway(
        smtp=smtp_listen, lmtp=lmtp_listen, max_bytes=max_message_bytes(),
        tls=tls_context(settings.MAILROOM_GATEWAY_TLS_CERT, settings.MAILROOM_GATEWAY_TLS_KEY),
        hostname=settings.MAILROOM_GATEWAY_HOSTNAME,
        db_threads=db_threads or default_db_threads(), limits=limits_from_settings())


def limits_from_settings() -> Limits:
    """The connection caps, message limit and idle timeout (0 turns a limit off)."""
    default = Limits()

    def number(name: str, fallback: float, kind: type = int):
        value = getattr(settings, name, None)
        try:
            number = kind(fallback if value in (None, "") else value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a number, not {value!r}.") from None
        if number < 0:
            raise ValueError(f"{name} must be 0 (no limit) or more, not {value!r}.")
        return number

    return Limits(
        max_connections=number("MAILROOM_GATEWAY_MAX_CONNECTIONS", default.max_connections),
        max_connections_per_ip=number("MAILROOM_GATEWAY_MAX_CONNECTIONS_PER_IP",
                                      default.max_connections_per_ip),
        messages_per_connection=number("MAILROOM_GATEWAY_MAX_MESSAGES_PER_CONNECTION",
                                       default.messages_per_connection),
        idle_timeout=number("MAILROOM_GATEWAY_IDLE_TIMEOUT", default.idle_timeout, float))


def default_db_threads() -> int:
    """Four, whose blob writes and fsyncs overlap: on PostgreSQL, and on SQLite with the intake
    spool (its inserts are short and the database's lock is not taken). A SQLite database
    written directly has one writer at a time: one thread."""
    configured = int(getattr(settings, "MAILROOM_GATEWAY_DB_THREADS", 0) or 0)
    if configured:
        return configured
    return 1 if connection.vendor == "sqlite" and not intake.enabled() else 4
