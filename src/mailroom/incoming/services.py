"""Receiving: store first, acknowledge after. The only writers of incoming rows.

Every entry point (SMTP/LMTP gateway, `mailroom deliver`, the IMAP/POP/maildir fetchers, the
API) calls `accept()`; when it returns, the raw bytes are fsynced in the blob store and the
InboundMail row is committed, so the caller may acknowledge (250, \\Seen, DELE). Routing
happens later, in the worker (`incoming.router`). On SQLite the gateway writes to the intake
spool instead (`accept_spooled`, incoming.intake), so accepting never waits on routing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from mailroom.core import record_types, saving
from mailroom.core.access import perm, require
from mailroom.core.blobs import read_blob, store_bytes
from mailroom.core.durability import durable_commit
from mailroom.core.services import (
    audit,
    connection_test_action,
    require_connection_test_budget,
    snapshot,
)
from mailroom.incoming import intake
from mailroom.incoming.models import InboundMail, IncomingServer
from mailroom.incoming.notify import notify_managers

log = logging.getLogger("mailroom.incoming")
TEST_ACTION = connection_test_action("incomingserver.test")


class TooLarge(ValueError):
    """The message is over the configured size limit (SMTP 552, sysexits 73, HTTP 413)."""


def max_message_bytes() -> int:
    return int(getattr(settings, "MAILROOM_INBOUND_MAX_BYTES", 50 * 1024 * 1024))


def accept(raw: bytes, *, company, source: str, server: IncomingServer | None = None,
           source_key: str | None = None, envelope_from: str = "",
           envelope_to: Iterable[str] = (), remote_ip: str | None = None,
           helo: str = "") -> InboundMail:
    """Store one received message durably and return its row.

    Idempotent on `source_key`: the same fetched message (or API delivery) accepted twice
    returns the first row. Raises TooLarge, or whatever the disk or database raised (the
    caller then answers "try again later": 451, EX_TEMPFAIL, or leaves the mail on the server).
    """
    if len(raw) > max_message_bytes():
        raise TooLarge(f"The message is {len(raw):,} bytes; the limit is "
                       f"{max_message_bytes():,} bytes.")
    if source not in InboundMail.Source.values:
        raise ValueError(f"unknown source {source!r}")
    if source_key:
        existing = InboundMail.objects.filter(source_key=source_key).first()
        if existing is not None:
            return existing
    sha256, size = _store_raw(raw)
    mail = InboundMail(
        company=company, source=source, server=server, source_key=source_key or None,
        envelope_from=(envelope_from or "")[:320],
        envelope_to=[a[:320] for a in envelope_to][:100], remote_ip=remote_ip or None,
        helo=(helo or "")[:255], raw_sha256=sha256, raw_size=size,
    )
    try:
        if transaction.get_connection().in_atomic_block:  # one of several (the gateway's
            with transaction.atomic():  # companies): a savepoint, for the IntegrityError
                saving.insert(mail)
        else:  # one INSERT in autocommit, committed when it returns: no BEGIN/COMMIT trips
            with durable_commit():
                saving.insert(mail)  # mail.save(), the INSERT built once
    except IntegrityError:
        if source_key:  # a concurrent fetch of the same message won
            return InboundMail.objects.get(source_key=source_key)
        raise
    return mail


def accept_spooled(raw: bytes, groups: list[tuple[object, list[str]]], *, source: str,
                   envelope_from: str = "", remote_ip: str | None = None,
                   helo: str = "") -> list[str]:
    """The gateway's `accept` on SQLite: the message in the blob store, then one row per
    company in the intake spool (incoming.intake), committed before this returns; the
    router moves them into InboundMail. Returns the spool ids ("s12") for the 250 reply."""
    if len(raw) > max_message_bytes():
        raise TooLarge(f"The message is {len(raw):,} bytes; the limit is "
                       f"{max_message_bytes():,} bytes.")
    if source not in InboundMail.Source.values:
        raise ValueError(f"unknown source {source!r}")
    sha256, size = _store_raw(raw)
    ids = intake.spool().add([{
        "company_id": company.pk, "source": source,
        "envelope_from": (envelope_from or "")[:320],
        "envelope_to": [a[:320] for a in addresses][:100], "remote_ip": remote_ip or None,
        "helo": (helo or "")[:255], "raw_sha256": sha256, "raw_size": size,
    } for company, addresses in groups])
    return [f"s{i}" for i in ids]


def _store_raw(raw: bytes) -> tuple[str, int]:
    """In the blob store (disk or bucket) and confirmed there, or BlobError/OSError: the
    caller then answers "try again later" and no row names a blob that is not stored."""
    return store_bytes(raw, max_bytes=max_message_bytes())


def raw_bytes(mail: InboundMail) -> bytes:
    """The message exactly as received."""
    return read_blob(mail.raw_sha256)


# --- the quarantine --------------------------------------------------------------------------

def reprocess(mails: Iterable[InboundMail], *, actor) -> int:
    """Send quarantined (or already routed) messages through the router again."""
    count = 0
    for mail in mails:
        require(actor, "incoming.change_inboundmail", mail,
                denied="Only Mail Managers may reprocess incoming mail.",
                elsewhere="This message belongs to another company.")
        if mail.state == InboundMail.State.RECEIVED:
            continue
        with transaction.atomic():
            InboundMail.objects.filter(pk=mail.pk).update(
                state=InboundMail.State.RECEIVED, error="", lease_owner="",
                lease_expires_at=None)
            audit("incoming.inboundmail.reprocess", actor=actor, obj=mail,
                  company=mail.company, before={"state": mail.state, "error": mail.error})
        count += 1
    return count


# --- incoming servers --------------------------------------------------------------------------

_SERVER_REFUSALS = {"denied": "Only Mail Managers may change incoming mail servers.",
                    "elsewhere": "This server belongs to another company."}


def validate_server(server: IncomingServer) -> None:
    errors: dict[str, str] = {}
    if server.kind == IncomingServer.Kind.MAILDIR:
        if not server.folder.startswith("/"):
            errors["folder"] = "Give the absolute path of the maildir."
    else:
        if not server.host:
            errors["host"] = "The server name is required."
        if server.auth == IncomingServer.Auth.PASSWORD and not server.username:
            errors["username"] = "The username is required."
        if server.auth == IncomingServer.Auth.XOAUTH2 and not server.oauth_provider:
            errors["oauth_provider"] = "Choose Google or Microsoft 365."
        if server.security == IncomingServer.Security.NONE and server.host not in (
                "127.0.0.1", "::1", "localhost"):
            errors["security"] = ("Plain-text connections are allowed to this machine only; "
                                  "choose SSL/TLS or STARTTLS.")
    if server.fallback_record_type:
        try:
            record_types.get(server.fallback_record_type)
        except LookupError:
            errors["fallback_record_type"] = "Unknown record type."
    if errors:
        raise ValidationError(errors)


def save_server(server: IncomingServer, *, actor) -> IncomingServer:
    """Create or update a server; a changed mailbox restarts from the beginning."""
    creating = server.pk is None
    require(actor, perm(server, "add" if creating else "change"), server, **_SERVER_REFUSALS)
    server.full_clean(exclude=["password", "oauth_client_secret", "oauth_refresh_token",
                               "oauth_access_token"])
    validate_server(server)
    before = None
    if not creating:
        old = IncomingServer.objects.get(pk=server.pk)
        before = snapshot(old)
        _keep_stored_secrets(server, old)
        if (old.kind, old.host, old.username, old.folder) != (
                server.kind, server.host, server.username, server.folder):
            server.uidvalidity, server.last_uid = None, 0
    try:
        with transaction.atomic():
            server.save()
            audit("incoming.server." + ("create" if creating else "change"), actor=actor,
                  obj=server, before=before, after=snapshot(server))
    except IntegrityError:
        raise ValidationError({"name": "Another incoming server has this name."}) from None
    return server


def _keep_stored_secrets(server: IncomingServer, stored: IncomingServer) -> None:
    """A form names the secrets it was given (`_entered_secrets`); every other one keeps its
    stored value, so a token the fetcher rotated while the form was open is not put back to
    the old one. A new refresh token drops the access token minted from the old grant."""
    entered = getattr(server, "_entered_secrets", None)
    if entered is None or getattr(server, "_forget_secrets", False):
        return
    for name in IncomingServer.SECRET_FIELDS:
        regranted = name == "oauth_access_token" and "oauth_refresh_token" in entered
        if name not in entered and not regranted:
            setattr(server, name, getattr(stored, name))
    if "oauth_refresh_token" not in entered:
        server.oauth_token_expires_at = stored.oauth_token_expires_at


def delete_server(server: IncomingServer, *, actor) -> None:
    """Delete a mailbox; the messages fetched from it stay, with their server unset."""
    require(actor, perm(server, "delete"), server, **_SERVER_REFUSALS)
    with transaction.atomic():
        audit("incoming.server.delete", actor=actor, obj=server, before=snapshot(server))
        server.delete()


def record_fetch(server: IncomingServer, *, count: int, error: str = "") -> IncomingServer:
    """After a fetch run: last time, count and error; tell the Mail Managers once when a
    server starts failing, and once when it works again."""
    now = timezone.now()
    server.refresh_from_db()
    server.last_fetch_at = now
    server.next_fetch_at = now + timezone.timedelta(minutes=server.fetch_interval)
    server.lease_owner, server.lease_expires_at = "", None
    if error:
        server.last_error = error[:2000]
        server.status = IncomingServer.Status.FAILING
        server.consecutive_failures += 1
        # back off a failing mailbox: 1, 2, 4… fetch intervals, at most an hour apart
        delay = min(60, server.fetch_interval * 2 ** min(server.consecutive_failures - 1, 6))
        server.next_fetch_at = now + timezone.timedelta(minutes=delay)
    else:
        server.last_fetch_count = count
        server.last_error = ""
        server.status = IncomingServer.Status.OK
        server.consecutive_failures = 0
    notify = None
    if error and server.consecutive_failures >= failure_threshold() and \
            not server.failure_notified:
        server.failure_notified, notify = True, "failing"
    elif not error and server.failure_notified:
        server.failure_notified, notify = False, "recovered"
    with transaction.atomic():
        server.save()
        if notify:
            notify_managers(server, notify)
    return server


def failure_threshold() -> int:
    return int(getattr(settings, "MAILROOM_FETCH_FAILURES_BEFORE_NOTICE", 3))


def run_connection_test(server: IncomingServer, *, actor) -> tuple[bool, str]:
    """Log in and open the folder without fetching; (passed, a sentence saying what was
    found or what failed). Limited per user and audited with the host it reached."""
    # local: the fetchers store through this module, which would import them back
    from mailroom.incoming.fetchers import FetchError, test_connection

    require(actor, perm(server, "change"), server, **_SERVER_REFUSALS)
    require_connection_test_budget(actor, server)
    try:
        ok, sentence = True, test_connection(server)
    except FetchError as exc:
        ok, sentence = False, str(exc)
    except Exception as exc:  # never a traceback for a failed test
        log.exception("testing incoming server %s failed", server.pk)
        ok, sentence = False, f"The test failed unexpectedly ({type(exc).__name__})."
    with transaction.atomic():
        audit(TEST_ACTION, actor=actor, obj=server,
              after={"host": server.host, "port": server.port, "ok": ok,
                     "message": sentence[:500]})
    return ok, sentence


def fetch_soon(server: IncomingServer, *, actor) -> IncomingServer:
    """"Fetch now": the worker's next pass fetches this server (its cron claims due servers)."""
    require(actor, perm(server, "change"), server, **_SERVER_REFUSALS)
    now = timezone.now()
    with transaction.atomic():
        IncomingServer.objects.filter(pk=server.pk).update(next_fetch_at=now)
        audit("incoming.server.fetch_now", actor=actor, obj=server, company=server.company)
    server.next_fetch_at = now
    return server
