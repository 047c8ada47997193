"""The gateway's listeners: where it listens (TCP or a unix socket), opening and closing
them, and `serve` — run until SIGTERM/SIGINT, then stop gracefully."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import ssl
import stat
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from aiosmtpd.smtp import SMTP

from mailroom.incoming.gateway.database import Database
from mailroom.incoming.gateway.received import RECEIVED_ROOM
from mailroom.incoming.gateway.sessions import GatewayLMTP, GatewaySMTP, Handler

log = logging.getLogger("mailroom.gateway")

Listen = tuple[str, int] | str  # (host, port), or the path of a unix socket


class ListenError(OSError):
    """A listener could not be opened (port taken, no permission): said in one line."""


def parse_listen(value: str | None) -> Listen | None:
    """`HOST:PORT`, `[::1]:PORT` or `unix:/path`; empty means "do not listen"."""
    value = (value or "").strip()
    if not value:
        return None
    if value.startswith("unix:"):
        path = value.removeprefix("unix:")
        if not path.startswith("/"):
            raise ValueError(f"{value!r}: give an absolute socket path, like unix:/run/x.sock")
        return path
    host, colon, port = value.rpartition(":")
    if not colon or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{value!r}: give HOST:PORT (e.g. 127.0.0.1:2525) or unix:/path")
    return host.removeprefix("[").removesuffix("]"), int(port)


def describe(listen: Listen) -> str:
    if isinstance(listen, str):
        return f"unix:{listen}"
    host, port = listen
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class Limits:
    """What one client may take of the gateway (MAILROOM_GATEWAY_*; 0 means no limit).

    Over a connection cap the client is greeted with 421 and the connection closed; after
    `messages_per_connection` messages the next MAIL is answered 421 (reconnect); a client
    that sends nothing for `idle_timeout` seconds is told 421 and disconnected. Clients on a
    unix socket (an MTA on this machine) count toward the total but have no per-IP cap."""

    max_connections: int = 500
    max_connections_per_ip: int = 50
    messages_per_connection: int = 1000
    idle_timeout: float = 300.0  # RFC 5321 4.5.3.2.7: a server waits at least 5 minutes


@dataclass
class Gateway:
    """The listeners and the thread pool; `start()` and `stop()` run on the gateway's loop."""

    smtp: Listen | None
    lmtp: Listen | None
    max_bytes: int
    tls: ssl.SSLContext | None = None
    hostname: str = ""
    db_threads: int = 1
    limits: Limits = field(default_factory=Limits)
    sessions: set = field(default_factory=set)
    per_ip: Counter = field(default_factory=Counter)  # open sessions by client IP
    busy: int = 0  # messages being stored right now
    received: int = 0
    smtp_port: int | None = None
    lmtp_port: int | None = None

    def __post_init__(self) -> None:
        self.hostname = self.hostname or socket.getfqdn()  # once, not per connection
        self.handler = Handler(self)
        self.db: Database | None = None
        self.servers: list[asyncio.AbstractServer] = []

    @property
    def data_limit(self) -> int:
        """The SIZE advertised and enforced: the limit less room for our Received line, so
        the message as stored stays within `max_bytes`."""
        return max(1, self.max_bytes - RECEIVED_ROOM)

    def _factory(self, protocol: type[SMTP]) -> Callable[[], SMTP]:
        def make() -> SMTP:
            session = protocol(self.handler, data_size_limit=self.data_limit,
                               enable_SMTPUTF8=True, hostname=self.hostname, ident="Mailroom",
                               tls_context=self.tls,
                               timeout=self.limits.idle_timeout or 365 * 86400.0,
                               loop=asyncio.get_running_loop())
            session.gateway = self
            return session
        return make

    async def _listen(self, what: str, listen: Listen, protocol: type[SMTP]) -> int | None:
        loop = asyncio.get_running_loop()
        try:
            if isinstance(listen, str):
                _remove_stale_socket(listen)
                server = await loop.create_unix_server(self._factory(protocol), listen)
            else:
                server = await loop.create_server(self._factory(protocol), listen[0] or None,
                                                  listen[1], reuse_address=True)
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise ListenError(f"Cannot listen for {what} on {describe(listen)}: {reason}") \
                from exc
        self.servers.append(server)
        if isinstance(listen, str):
            log.info("gateway: %s on unix:%s", what, listen)
            return None
        port = server.sockets[0].getsockname()[1]
        log.info("gateway: %s on %s%s", what, describe((listen[0], port)),
                 " (STARTTLS offered)" if self.tls else "")
        return port

    async def start(self) -> None:
        # aiosmtpd logs every command line (with addresses) at INFO: keep its warnings only
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        self.db = Database(self.db_threads)
        try:
            if self.smtp is not None:
                self.smtp_port = await self._listen("SMTP", self.smtp, GatewaySMTP)
            if self.lmtp is not None:
                self.lmtp_port = await self._listen("LMTP", self.lmtp, GatewayLMTP)
        except BaseException:
            await self.stop(grace=0)
            raise

    async def stop(self, grace: float = 10.0) -> None:
        """Stop listening, let messages being stored finish (up to `grace` seconds), then
        close the remaining sessions with 421 and the database connections."""
        for server in self.servers:
            server.close()
        deadline = time.monotonic() + grace
        while self.busy and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        for session in list(self.sessions):
            transport = session.transport
            if transport is not None and not transport.is_closing():
                with contextlib.suppress(Exception):
                    transport.write(b"421 4.3.2 Mailroom gateway shutting down\r\n")
                transport.close()
        await asyncio.sleep(0)  # let the sessions see their connections close
        for listen in (self.smtp, self.lmtp):
            if isinstance(listen, str) and self.servers:
                with contextlib.suppress(OSError):
                    os.unlink(listen)
        self.servers = []
        if self.db is not None:
            db, self.db = self.db, None
            await asyncio.get_running_loop().run_in_executor(None, db.close)


def _remove_stale_socket(path: str) -> None:
    """A socket file left by a gateway that died: remove it, unless something answers."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        return  # not ours to delete; binding fails with a clear error
    with socket.socket(socket.AF_UNIX) as probe:
        try:
            probe.connect(path)
        except OSError:
            os.unlink(path)


async def serve(gateway: Gateway, early: threading.Event | None = None) -> None:
    """Run until SIGTERM/SIGINT, then stop gracefully. `early` is set by a signal that came
    before this loop's handlers were installed."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _on_signal, sig, stop)
    if early is not None and early.is_set():
        stop.set()
    await gateway.start()
    try:
        await stop.wait()
    finally:
        await gateway.stop()
        log.info("gateway: stopped after %d messages", gateway.received)


def _on_signal(sig, stop: asyncio.Event) -> None:
    log.info("gateway: %s received, finishing messages being stored", sig.name)
    stop.set()
