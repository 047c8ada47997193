"""IMAP: read what is new and unread in one folder, store it, then mark it read (or move it).

Position: UIDs only mean something within one UIDVALIDITY. The server remembers the last UID
it handled; a new UIDVALIDITY starts again from 0, and messages then found again are known by
their bytes (same server, same sha256) and only acknowledged. Bodies are read with
BODY.PEEK[], so nothing is marked read before it is stored. A connection dropped mid-run loses
nothing: stored-but-unacknowledged messages are found by their key next time and acknowledged
then, without storing them again.
"""

from __future__ import annotations

import imaplib
from collections.abc import Iterator
from contextlib import contextmanager

from imapclient import DELETED, SEEN, IMAPClient
from imapclient.exceptions import LoginError

from mailroom.core import oauth
from mailroom.incoming.fetchers.base import (
    MAX_PER_RUN,
    TIMEOUT,
    FetchError,
    FetchResult,
    Store,
    plain_error,
)
from mailroom.incoming.fetchers.tls import ssl_context
from mailroom.incoming.models import IncomingServer

BATCH = 50  # messages per FETCH


@contextmanager
def connect(server: IncomingServer) -> Iterator[IMAPClient]:
    """A logged-in client; logged out (or just closed) on exit."""
    security = server.security
    context = ssl_context(server) if security != IncomingServer.Security.NONE else None
    client = IMAPClient(server.host, port=server.effective_port,
                        ssl=security == IncomingServer.Security.SSL, ssl_context=context,
                        timeout=TIMEOUT)
    try:
        if security == IncomingServer.Security.STARTTLS:
            if not client.has_capability("STARTTLS"):
                raise FetchError(f"The server {server.host} does not offer STARTTLS; "
                                 "choose SSL/TLS or another port.")
            client.starttls(context)
        login(client, server)
        yield client
    finally:
        try:
            client.logout()
        except Exception:
            try:
                client.shutdown()
            except Exception:
                pass


def login(client: IMAPClient, server: IncomingServer) -> None:
    try:
        if server.auth == IncomingServer.Auth.XOAUTH2:
            try:
                token = oauth.access_token(server)
            except oauth.OAuthError as exc:
                raise FetchError(exc.message) from None
            client.oauth2_login(server.username, token)
        else:
            client.login(server.username, server.password)
    except (LoginError, imaplib.IMAP4.error) as exc:
        if isinstance(exc, imaplib.IMAP4.abort):
            raise
        raise FetchError(f"The server {server.host} refused the login for "
                         f"“{server.username}”: wrong user name or password "
                         f"({_said(exc)}).") from None


def select(client: IMAPClient, folder: str, *, readonly: bool = False) -> dict:
    if not client.folder_exists(folder):
        raise FetchError(f"The folder “{folder}” does not exist on the server.")
    return client.select_folder(folder, readonly=readonly)


def fetch(server: IncomingServer, result: FetchResult) -> None:
    with connect(server) as client:
        if server.move_to and not client.folder_exists(server.move_to):
            raise FetchError(f"The folder “{server.move_to}” (where fetched mail is moved) "
                             "does not exist on the server.")
        uidvalidity = int(select(client, server.folder)[b"UIDVALIDITY"])
        if server.uidvalidity != uidvalidity:
            # a new mailbox as far as UIDs go: start again, known bytes are not stored twice
            server.uidvalidity, server.last_uid = uidvalidity, 0
            IncomingServer.objects.filter(pk=server.pk).update(uidvalidity=uidvalidity,
                                                               last_uid=0)
        # "n:*" always matches the highest UID, even below n: filter
        uids = sorted(u for u in client.search(["UID", f"{server.last_uid + 1}:*", "UNSEEN"])
                      if u > server.last_uid)
        if len(uids) > MAX_PER_RUN:
            uids, result.more = uids[:MAX_PER_RUN], True
        store = Store(server, IncomingServer.Kind.IMAP, result, dedupe_bytes=True)
        for start in range(0, len(uids), BATCH):
            _fetch_batch(client, server, store, uidvalidity, uids[start:start + BATCH])


def _fetch_batch(client: IMAPClient, server: IncomingServer, store: Store, uidvalidity: int,
                 batch: list[int]) -> None:
    def key(uid: int) -> str:
        return f"imap:{server.pk}:{uidvalidity}:{uid}"

    sizes = client.fetch(batch, ["RFC822.SIZE"])
    wanted = [uid for uid in batch if uid in sizes and not store.refuse_if_too_large(
        key(uid), sizes[uid].get(b"RFC822.SIZE"))]
    stored: list[int] = []
    try:
        bodies = client.fetch(wanted, ["BODY.PEEK[]"]) if wanted else {}
        for uid in wanted:
            raw = bodies.get(uid, {}).get(b"BODY[]")
            if raw is not None and store.store(key(uid), raw):
                stored.append(uid)
    finally:
        # acknowledge what was stored even when a later message failed
        if stored:
            acknowledge(client, server, stored)
            store.result.acknowledged += len(stored)
    # everything in the batch was handled: stored and acknowledged, vanished, or too large
    last = max(batch)
    IncomingServer.objects.filter(pk=server.pk, last_uid__lt=last).update(last_uid=last)
    server.last_uid = last


def acknowledge(client: IMAPClient, server: IncomingServer, uids: list[int]) -> None:
    if not server.move_to:
        client.add_flags(uids, [SEEN], silent=True)
    elif client.has_capability("MOVE"):
        client.move(uids, server.move_to)
    else:
        client.copy(uids, server.move_to)
        client.add_flags(uids, [DELETED], silent=True)
        if client.has_capability("UIDPLUS"):
            client.uid_expunge(uids)
        else:
            client.expunge()


def test_connection(server: IncomingServer) -> str:
    with connect(server) as client:
        select(client, server.folder, readonly=True)
        status = client.folder_status(server.folder, ["MESSAGES", "UNSEEN"])
    total, unread = int(status[b"MESSAGES"]), int(status[b"UNSEEN"])
    return (f"Connected; {server.folder} has {total} message{'s' if total != 1 else ''} "
            f"({unread} unread).")


def describe(exc: BaseException, server: IncomingServer) -> str:
    if isinstance(exc, imaplib.IMAP4.abort):
        if "timed out" in str(exc):
            return plain_error(TimeoutError(), server)
        return (f"The connection to {server.host}:{server.effective_port} was closed "
                f"unexpectedly ({_said(exc)}); it will be tried again.")
    if isinstance(exc, imaplib.IMAP4.error):
        return f"The server {server.host} answered: {_said(exc)}."
    return plain_error(exc, server)


def _said(exc: BaseException) -> str:
    text = str(exc.args[0] if exc.args else exc)
    if text.startswith(("b'", 'b"')):
        text = text[2:-1]
    return text.strip()[:300]
