"""The inbound SMTP and LMTP gateway: refuse early, store, and only then say 250.

aiosmtpd speaks the protocol on one asyncio loop; everything that touches the database
(`routing.services.resolve` at RCPT, `incoming.services.accept` after DATA) runs in a small,
long-lived thread pool so a slow query never stalls the other sessions. The pool's threads
keep their database connections and drop them when they go stale or break.

What a client is told, and when:
- RCPT: an address that is not ours → 550 5.1.1 at once (no backscatter later); a database
  error → 451 4.3.0 (the sending MTA retries).
- MAIL ... SIZE= over the limit → 552; DATA over the limit → 552 5.3.4 (aiosmtpd counts while
  it reads and keeps nothing past the limit).
- DATA with a bare LF or bare CR → 550 5.5.2: different servers end DATA at different
  sequences, which is how SMTP smuggling injects a second message (CVE-2023-51766 and kin).
  aiosmtpd ≥ 1.4.5 itself only ends DATA at <CRLF>.<CRLF> (CVE-2024-27305).
- After DATA, recipients are grouped by company: one InboundMail row per company, stored
  (blob fsynced, row committed) before the 250. Over SMTP the groups commit together or not
  at all (451 4.3.0), so a retry never duplicates; over LMTP each recipient gets its own reply.

Measured (2-core shared VM, 4 KB messages, 8 client connections from another process):
~420-450 messages/s stored on SQLite, ~400 on PostgreSQL. The process is CPU-bound at about
1.9 ms CPU a message (aiosmtpd reads DATA line by line in Python; the ORM insert), not
waiting on fsync or locks: more database threads do not help, more processes would.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import ssl
import stat
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope

log = logging.getLogger("mailroom.gateway")

Listen = tuple[str, int] | str  # (host, port), or the path of a unix socket

MAX_RECIPIENTS = 100  # RFC 5321 4.5.3.1.8: a server must take at least 100
REPLY_RCPT_OK = "250 2.1.5 Ok"
REPLY_RCPT_TEMPFAIL = "451 4.3.0 temporary failure, try again later"
REPLY_TOO_MANY_RCPT = "452 4.5.3 too many recipients"
REPLY_SMUGGLING = "550 5.5.2 bare LF/CR in message refused (SMTP smuggling protection)"
REPLY_TOO_BIG = "552 5.3.4 message too big for this system"
REPLY_STORE_TEMPFAIL = "451 4.3.0 could not store the message, try again later"
# aiosmtpd's own replies, given enhanced status codes (RFC 3463)
_REWRITES = {
    "552 Error: Too much mail data": REPLY_TOO_BIG,
    "552 Error: message size exceeds fixed maximum message size":
        "552 5.3.4 message size exceeds fixed maximum message size",
    "500 Line too long (see RFC5321 4.5.3.1.6)": "500 5.5.2 line too long",
}
# the replies aiosmtpd gives after DATA itself: LMTP needs one per recipient
_AFTER_DATA = {REPLY_TOO_BIG, "500 5.5.2 line too long"}


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


def has_bare_cr_or_lf(data: bytes) -> bool:
    """True when a CR or LF in `data` is not part of a CRLF pair (counted in C, no loop)."""
    pairs = data.count(b"\r\n")
    return data.count(b"\r") != pairs or data.count(b"\n") != pairs


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


# --- the database side -------------------------------------------------------------------------

class Database:
    """Runs ORM calls off the event loop, in a few threads that live as long as the gateway.

    Each thread keeps its connection between calls; at most once a second, and after every
    error, it lets Django drop a connection that is broken or past CONN_MAX_AGE (on SQLite,
    whose CONN_MAX_AGE is 0, that means one reconnect a second rather than one per message).
    """

    check_every = 1.0

    def __init__(self, threads: int) -> None:
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="gateway-db")
        self._local = threading.local()
        self._wrappers: list[Any] = []  # each thread's database connection wrapper

    async def run(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.executor, functools.partial(self._call, func, args, kwargs))

    def _call(self, func: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        from django.db import close_old_connections, connections

        now = time.monotonic()
        if now - getattr(self._local, "checked", 0.0) >= self.check_every:
            if not hasattr(self._local, "checked"):
                self._wrappers.append(connections["default"])
            close_old_connections()
            self._local.checked = now
        try:
            return func(*args, **kwargs)
        except BaseException:
            close_old_connections()
            raise

    def close(self) -> None:
        """Wait for running calls, then close the threads' connections from here."""
        self.executor.shutdown(wait=True)
        for wrapper in self._wrappers:
            wrapper.inc_thread_sharing()  # Django's way to allow a close from this thread
            try:
                wrapper.close()
            except Exception:
                log.exception("gateway: closing a database connection failed")
            finally:
                wrapper.dec_thread_sharing()
        self._wrappers.clear()


def _store(raw: bytes, groups: list[tuple[Any, list[str]]], *, source: str, together: bool,
           envelope_from: str, remote_ip: str | None, helo: str) -> list[int]:
    """One InboundMail per company; `together`: all rows in one transaction."""
    from django.db import transaction

    from mailroom.incoming import services

    def store_all() -> list[int]:
        return [services.accept(raw, company=domain.company, source=source,
                                envelope_from=envelope_from, envelope_to=addresses,
                                remote_ip=remote_ip, helo=helo).pk
                for domain, addresses in groups]

    if together and len(groups) > 1:
        with transaction.atomic():
            return store_all()
    return store_all()


def _resolve(address: str):
    from mailroom.routing.services import resolve

    return resolve(address)


# --- the protocol side -------------------------------------------------------------------------

class GatewayEnvelope(Envelope):
    def __init__(self) -> None:
        super().__init__()
        self.targets: list[Any] = []  # routing Targets, parallel to rcpt_tos


class _GatewayProtocol:
    """What the SMTP and LMTP sessions share: our envelope, replies, session tracking."""

    gateway: Gateway

    def _create_envelope(self) -> Envelope:
        return GatewayEnvelope()

    async def push(self, status):
        if isinstance(status, str) and status in _REWRITES:
            status = _REWRITES[status]
            if isinstance(self, LMTP) and status in _AFTER_DATA:
                status = "\r\n".join([status] * max(1, len(self.envelope.rcpt_tos)))
        await super().push(status)

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self.gateway.sessions.add(self)

    def connection_lost(self, error) -> None:
        self.gateway.sessions.discard(self)
        super().connection_lost(error)


class GatewaySMTP(_GatewayProtocol, SMTP):
    source = "smtp"


class GatewayLMTP(_GatewayProtocol, LMTP):
    source = "lmtp"


class Handler:
    """aiosmtpd's hooks: RCPT asks `resolve`, DATA stores through `accept`."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def handle_RCPT(self, server, session, envelope, address: str, rcpt_options):
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return REPLY_TOO_MANY_RCPT
        try:
            target = await self.gateway.db.run(_resolve, address)
        except Exception:
            log.exception("gateway: could not look up a recipient (answered 451)")
            return REPLY_RCPT_TEMPFAIL
        if target is None:
            return f"550 5.1.1 <{address[:320]}>: no such address here"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        envelope.targets.append(target)
        return REPLY_RCPT_OK

    async def handle_DATA(self, server, session, envelope):
        lmtp = isinstance(server, LMTP)
        raw: bytes = envelope.original_content or b""
        peer = session.peer if isinstance(session.peer, tuple) else None
        if has_bare_cr_or_lf(raw):
            log.warning("gateway: refused a message with bare CR/LF from %s",
                        peer[0] if peer else "a local socket")
            return self._replies(REPLY_SMUGGLING, envelope, lmtp)
        groups: dict[int, tuple[Any, list[str]]] = {}
        for address, target in zip(envelope.rcpt_tos, envelope.targets, strict=True):
            groups.setdefault(target.company_id, (target.domain, []))[1].append(address)
        # the null sender (a delivery report or an auto-reply) is kept as "<>", apart from
        # "" (no envelope: fetched mail), so the router knows mail that must not be answered
        sender = "<>" if envelope.mail_from in (None, "", "<>") else envelope.mail_from
        meta = {"source": server.source, "envelope_from": sender,
                "remote_ip": peer[0] if peer else None, "helo": session.host_name or ""}
        self.gateway.busy += 1
        try:
            if not lmtp:
                return await self._store(raw, list(groups.values()), together=True, **meta)
            per_company = {}
            for company_id, group in groups.items():
                per_company[company_id] = await self._store(raw, [group], together=False,
                                                            **meta)
            return "\r\n".join(per_company[target.company_id] for target in envelope.targets)
        finally:
            self.gateway.busy -= 1

    async def _store(self, raw: bytes, groups, **meta) -> str:
        from mailroom.incoming.services import TooLarge

        try:
            ids = await self.gateway.db.run(_store, raw, groups, **meta)
        except TooLarge:
            return REPLY_TOO_BIG
        except Exception:
            log.exception("gateway: could not store a %d-byte message (answered 451)", len(raw))
            return REPLY_STORE_TEMPFAIL
        self.gateway.received += 1
        log.info("gateway: stored %s (%d bytes, %s)", ", ".join(f"#{i}" for i in ids),
                 len(raw), meta["source"])
        return f"250 2.0.0 Ok: queued as {','.join(str(i) for i in ids)}"

    @staticmethod
    def _replies(reply: str, envelope, lmtp: bool) -> str:
        return "\r\n".join([reply] * len(envelope.rcpt_tos)) if lmtp else reply


# --- the listeners -------------------------------------------------------------------------------

@dataclass
class Gateway:
    """The listeners and the thread pool; `start()` and `stop()` run on the gateway's loop."""

    smtp: Listen | None
    lmtp: Listen | None
    max_bytes: int
    tls: ssl.SSLContext | None = None
    hostname: str = ""
    db_threads: int = 1
    timeout: float = 300.0
    sessions: set = field(default_factory=set)
    busy: int = 0  # messages being stored right now
    received: int = 0
    smtp_port: int | None = None
    lmtp_port: int | None = None

    def __post_init__(self) -> None:
        self.hostname = self.hostname or socket.getfqdn()  # once, not per connection
        self.handler = Handler(self)
        self.db: Database | None = None
        self.servers: list[asyncio.AbstractServer] = []

    def _factory(self, protocol: type[SMTP]) -> Callable[[], SMTP]:
        def make() -> SMTP:
            session = protocol(self.handler, data_size_limit=self.max_bytes,
                               enable_SMTPUTF8=True, hostname=self.hostname, ident="Mailroom",
                               tls_context=self.tls, timeout=self.timeout,
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


def gateway_from_settings(smtp: str | None = None, lmtp: str | None = None,
                          db_threads: int | None = None) -> Gateway:
    """A Gateway configured from MAILROOM_GATEWAY_* (arguments override); ValueError when the
    configuration is wrong."""
    from django.conf import settings

    from mailroom.incoming.services import max_message_bytes

    smtp_listen = parse_listen(settings.MAILROOM_GATEWAY_SMTP if smtp is None else smtp)
    lmtp_listen = parse_listen(settings.MAILROOM_GATEWAY_LMTP if lmtp is None else lmtp)
    if smtp_listen is None and lmtp_listen is None:
        raise ValueError("Nothing to listen on: MAILROOM_GATEWAY_SMTP and "
                         "MAILROOM_GATEWAY_LMTP are both empty.")
    return Gateway(
        smtp=smtp_listen, lmtp=lmtp_listen, max_bytes=max_message_bytes(),
        tls=tls_context(settings.MAILROOM_GATEWAY_TLS_CERT, settings.MAILROOM_GATEWAY_TLS_KEY),
        hostname=settings.MAILROOM_GATEWAY_HOSTNAME,
        db_threads=db_threads or default_db_threads())


def default_db_threads() -> int:
    """SQLite has one writer at a time: one thread. PostgreSQL overlaps fsyncs and commits."""
    from django.conf import settings
    from django.db import connection

    configured = int(getattr(settings, "MAILROOM_GATEWAY_DB_THREADS", 0) or 0)
    if configured:
        return configured
    return 1 if connection.vendor == "sqlite" else 4


async def serve(gateway: Gateway, early: threading.Event | None = None) -> None:
    """Run until SIGTERM/SIGINT, then stop gracefully. `early` is set by a signal that came
    before this loop's handlers were installed."""
    import signal

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


# --- in-process, for tests and benchmarks ----------------------------------------------------

class RunningGateway:
    """A gateway on its own loop in a background thread."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="gateway-loop",
                                        daemon=True)
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(gateway.start(), self.loop).result(30)
        except BaseException:
            self._end_loop()
            raise

    @property
    def smtp_port(self) -> int | None:
        return self.gateway.smtp_port

    @property
    def lmtp_port(self) -> int | None:
        return self.gateway.lmtp_port

    def stop(self, grace: float = 5.0) -> None:
        if self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self.gateway.stop(grace), self.loop).result(grace + 30)
        self._end_loop()

    def _end_loop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self._thread = None
        self.loop.close()

    def __enter__(self) -> RunningGateway:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_gateway(smtp: Listen | None = ("127.0.0.1", 0),
                  lmtp: Listen | None = ("127.0.0.1", 0), *, max_bytes: int | None = None,
                  tls: ssl.SSLContext | None = None, db_threads: int = 1,
                  hostname: str = "mx.mailroom.test") -> RunningGateway:
    """Start a gateway in this process (port 0: any free port; read `.smtp_port`)."""
    from mailroom.incoming.services import max_message_bytes

    return RunningGateway(Gateway(smtp=smtp, lmtp=lmtp, tls=tls, hostname=hostname,
                                  max_bytes=max_bytes or max_message_bytes(),
                                  db_threads=db_threads))
