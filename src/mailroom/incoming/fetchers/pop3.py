"""POP3: every message on the server, by UIDL; deleted only after it is stored.

DELE only marks a message; QUIT commits. A connection dropped before QUIT leaves every
message on the server, and the next run finds their keys already stored: it deletes them
without storing them again.
"""

from __future__ import annotations

import poplib
from collections.abc import Iterator
from contextlib import contextmanager

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

MAX_LINE = 1024 * 1024  # poplib's own 2048 refuses real mail with long lines


class _LongLines:
    def _getline(self):
        line = self.file.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise poplib.error_proto("line too long")
        if not line:
            raise poplib.error_proto("-ERR EOF")
        octets = len(line)
        if line[-2:] == b"\r\n":
            return line[:-2], octets
        if line[:1] == b"\r":
            return line[1:-1], octets
        return line[:-1], octets


class POP3(_LongLines, poplib.POP3):
    pass


class POP3SSL(_LongLines, poplib.POP3_SSL):
    pass


@contextmanager
def connect(server: IncomingServer) -> Iterator[poplib.POP3]:
    """A logged-in session. On exit the caller has sent QUIT (committing deletions) or the
    socket is just closed (deleting nothing)."""
    security = server.security
    if security == IncomingServer.Security.SSL:
        pop: poplib.POP3 = POP3SSL(server.host, server.effective_port,
                                   context=ssl_context(server), timeout=TIMEOUT)
    else:
        pop = POP3(server.host, server.effective_port, timeout=TIMEOUT)
    try:
        if security == IncomingServer.Security.STARTTLS:
            pop.stls(ssl_context(server))
        login(pop, server)
        yield pop
    finally:
        pop.close()


def login(pop: poplib.POP3, server: IncomingServer) -> None:
    try:
        if server.auth == IncomingServer.Auth.XOAUTH2:
            try:
                token = oauth.access_token(server)
            except oauth.OAuthError as exc:
                raise FetchError(exc.message) from None
            pop._shortcmd("AUTH XOAUTH2")
            answer = pop._shortcmd(oauth.xoauth2_string(server.username, token))
            if not answer.startswith(b"+OK"):  # "+ <error JSON>": finish the exchange
                pop._shortcmd("")
        else:
            pop.user(server.username)
            pop.pass_(server.password)
    except poplib.error_proto as exc:
        raise FetchError(f"The server {server.host} refused the login for "
                         f"“{server.username}”: wrong user name or password "
                         f"({_said(exc)}).") from None


def fetch(server: IncomingServer, result: FetchResult) -> None:
    store = Store(server, IncomingServer.Kind.POP3, result)
    with connect(server) as pop:
        uidls = dict(_pairs(pop.uidl()[1]))
        sizes = {n: int(size) for n, size in _pairs(pop.list()[1])}
        numbers = sorted(uidls)
        if len(numbers) > MAX_PER_RUN:
            numbers, result.more = numbers[:MAX_PER_RUN], True
        for number in numbers:
            key = f"pop3:{server.pk}:{uidls[number]}"
            if store.refuse_if_too_large(key, sizes.get(number)):
                continue
            if store.known(key):  # stored by a run that never reached QUIT
                result.duplicates += 1
            else:
                lines = pop.retr(number)[1]
                if not store.store(key, b"\r\n".join(lines) + b"\r\n"):
                    continue
            pop.dele(number)
            result.acknowledged += 1
        pop.quit()  # commits the deletions


def test_connection(server: IncomingServer) -> str:
    with connect(server) as pop:
        count, _size = pop.stat()
        pop.quit()
    return (f"Connected; the mailbox has {count} message{'s' if count != 1 else ''} "
            "waiting.")


def describe(exc: BaseException, server: IncomingServer) -> str:
    if isinstance(exc, poplib.error_proto):
        said = _said(exc)
        if "EOF" in said:
            return (f"The connection to {server.host}:{server.effective_port} was closed "
                    "unexpectedly; it will be tried again.")
        return f"The server {server.host} answered: {said}."
    return plain_error(exc, server)


def _pairs(lines: list[bytes]) -> Iterator[tuple[int, str]]:
    for line in lines:
        number, _, value = line.decode("ascii", "replace").partition(" ")
        yield int(number), value.strip()


def _said(exc: BaseException) -> str:
    text = exc.args[0] if exc.args else exc
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return str(text).strip()[:300]
