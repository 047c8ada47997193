"""Fetching mail from mailboxes (IMAP, POP3, a local maildir) without losing or duplicating.

    result = fetch(server)          # never raises: problems are in result.error/.problems
    text = test_connection(server)  # "Connected; INBOX has 12 messages (3 unread)." or
                                    # raises FetchError in plain words

Each message is stored with `incoming.services.accept()` under a key naming where it came
from, and only then acknowledged on the server (IMAP \\Seen or MOVE, POP3 DELE + QUIT,
maildir new/ → cur/ with S). See base.py for what all fetchers share.
"""

from __future__ import annotations

import logging
import ssl

from mailroom.incoming.fetchers import imap, maildir, pop3
from mailroom.incoming.fetchers.base import FetchError, FetchResult
from mailroom.incoming.models import IncomingServer

__all__ = ["FetchError", "FetchResult", "fetch", "test_connection"]

log = logging.getLogger("mailroom.incoming.fetch")

PROTOCOLS = {
    IncomingServer.Kind.IMAP: imap,
    IncomingServer.Kind.POP3: pop3,
    IncomingServer.Kind.MAILDIR: maildir,
}
# what a network or protocol failure looks like; anything else is a bug and is logged in full
_EXPECTED = (OSError, EOFError, ssl.SSLError, FetchError, imap.imaplib.IMAP4.error,
             pop3.poplib.error_proto)


def _protocol(server: IncomingServer):
    try:
        return PROTOCOLS[server.kind]
    except KeyError:
        raise FetchError(f"Unknown mailbox type {server.kind!r}.") from None


def fetch(server: IncomingServer) -> FetchResult:
    """Fetch up to MAX_PER_RUN messages; never raises. Call it outside any transaction."""
    result = FetchResult()
    try:
        protocol = _protocol(server)
        protocol.fetch(server, result)
    except Exception as exc:
        if not isinstance(exc, _EXPECTED):
            log.exception("fetching from incoming server %s failed", server.pk)
        result.error = (PROTOCOLS.get(server.kind, imap).describe(exc, server))
    return result


def test_connection(server: IncomingServer) -> str:
    """Connect, log in and open the folder; a sentence saying what is there, or FetchError."""
    protocol = _protocol(server)
    try:
        return protocol.test_connection(server)
    except FetchError:
        raise
    except Exception as exc:
        if not isinstance(exc, _EXPECTED):
            log.exception("testing incoming server %s failed", server.pk)
        raise FetchError(protocol.describe(exc, server)) from None
