"""Real SMTP peers on loopback for the transport and sender tests (aiosmtpd in a thread).

    peer = SmtpPeer(starttls=ctx, users={"acme": "s3cret"}).start()
    ... send to 127.0.0.1:peer.port ...
    peer.messages      # what was accepted: envelope + raw bytes
    peer.sessions      # per connection: TLS or not, AUTH seen (and whether encrypted)
    peer.faults        # switch failures on and off while the peer runs
    peer.stop()

Certificates come from a trustme CA that only the tests trust (`Certs`); `client_context()`
returns a fresh client SSLContext trusting it, which is what the transport's `ssl_context`
factory hook takes.
"""

from __future__ import annotations

import asyncio
import base64
import email.parser
import email.policy
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
import trustme
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

_headers_parser = email.parser.BytesHeaderParser(policy=email.policy.compat32)


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    at: float
    mail_options: list[str] = field(default_factory=list)  # e.g. SMTPUTF8, BODY=8BITMIME

    def header(self, name: str) -> str | None:
        value = _headers_parser.parsebytes(self.data).get(name)
        return None if value is None else " ".join(str(value).split())

    @property
    def message_id(self) -> str | None:
        return self.header("Message-ID")


@dataclass
class Session:
    tls: bool = False
    auth: list[tuple[str, bool]] = field(default_factory=list)  # (mechanism, encrypted?)
    commands: list[str] = field(default_factory=list)
    # MAIL commands that arrived with more commands already behind them (RFC 2920 batches)
    batched: int = 0


@dataclass
class Faults:
    """Failures to inject; change them while the peer runs (`clear()` = recover)."""

    greeting: str | None = None  # e.g. "421 4.3.2 Too busy": sent instead of 220, then close
    mail_from: str | None = None  # reply to MAIL FROM
    rcpt: dict[str, str] = field(default_factory=dict)  # address (or "*") -> reply
    data: str | None = None  # final reply after the content
    disconnect_in_data: bool = False  # 354, read a line of content, then drop the connection
    stall_data: float = 0  # wait this long before the final reply (the client times out)
    stall_after: int | None = None  # accept this many messages, then stall every DATA
    stall_greeting: float = 0
    slow_data: float = 0  # wait this long, then accept (a slow server, a large message)

    def clear(self) -> None:
        self.__init__()


class Handler:
    def __init__(self, peer: SmtpPeer) -> None:
        self.peer = peer

    async def auth_XOAUTH2(self, server, args) -> AuthResult:
        """RFC-less but universal: base64("user=<u>\x01auth=Bearer <token>\x01\x01")."""
        if len(args) < 2:
            return AuthResult(success=False)
        raw = base64.b64decode(args[1]).decode()
        fields = dict(part.split("=", 1) for part in raw.split("\x01") if "=" in part)
        user, token = fields.get("user"), fields.get("auth", "").removeprefix("Bearer ")
        ok = bool(user) and self.peer.oauth_tokens.get(user) == token
        if not ok:  # what Gmail does: a 334 JSON challenge, then 535 after the empty reply
            await server.challenge_auth(base64.b64encode(b'{"status":"401"}').decode(),
                                        encode_to_b64=False)
            return AuthResult(success=False, handled=False,
                              message="535 5.7.8 Username and Password not accepted")
        return AuthResult(success=True)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.peer.pipelining:  # RFC 2920, as Postfix, Exim and the big providers offer
            responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        faults = self.peer.faults
        reply = faults.rcpt.get(address.lower()) or faults.rcpt.get("*")
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.peer.faults.mail_from:
            return self.peer.faults.mail_from
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_DATA(self, server, session, envelope):
        faults = self.peer.faults
        if faults.stall_after is not None and len(self.peer.messages) >= faults.stall_after:
            self.peer.stalled += 1
            await self.peer.stall(3600)
            return "451 4.4.2 Too late"  # the client gave up: not delivered
        if faults.stall_data:
            await self.peer.stall(faults.stall_data)
            return "451 4.4.2 Too late"  # the client gave up: not delivered
        if faults.data:
            return faults.data
        if faults.slow_data:
            self.peer.slowed += 1
            await self.peer.stall(faults.slow_data)
        with self.peer.lock:
            self.peer.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos),
                                               envelope.original_content, time.time(),
                                               list(envelope.mail_options)))
        return "250 2.0.0 Queued"


class PeerSMTP(SMTP):
    """aiosmtpd's SMTP with a record of each session and the greeting/DATA faults."""

    peer: SmtpPeer

    def connection_made(self, transport) -> None:
        first = self.transport is None
        super().connection_made(transport)
        if first:
            self.record = Session()
            with self.peer.lock:
                self.peer.sessions.append(self.record)
                self.peer.protocols.append(self)
            if transport.get_extra_info("ssl_object") is not None:  # implicit TLS
                self.record.tls = True
                self.session.ssl = transport.get_extra_info("ssl_object")
                self._tls_protocol = True  # lets AUTH through when auth_require_tls is on
        elif self.session.ssl is not None:  # after STARTTLS
            self.record.tls = True

    async def _handle_client(self) -> None:
        faults = self.peer.faults
        if faults.stall_greeting:
            await self.peer.stall(faults.stall_greeting)
            self.transport.close()
            return
        if faults.greeting:
            await self.push(faults.greeting)
            self.transport.close()
            return
        await super()._handle_client()

    async def smtp_AUTH(self, arg: str) -> None:
        self.record.auth.append(((arg or "").split(" ")[0].upper(), self.record.tls))
        await super().smtp_AUTH(arg)

    async def smtp_MAIL(self, arg: str) -> None:
        self.record.commands.append("MAIL")
        if self._reader._buffer:
            self.record.batched += 1
        await super().smtp_MAIL(arg)

    async def smtp_RCPT(self, arg: str) -> None:
        self.record.commands.append("RCPT")
        await super().smtp_RCPT(arg)

    async def smtp_DATA(self, arg: str) -> None:
        self.record.commands.append("DATA")
        if self.peer.faults.disconnect_in_data and self.envelope.rcpt_tos:
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            await self._reader.readline()
            self.transport.abort()
            return
        await super().smtp_DATA(arg)


class SmtpPeer:
    def __init__(self, *, implicit_tls: ssl.SSLContext | None = None,
                 starttls: ssl.SSLContext | None = None, users: dict[str, str] | None = None,
                 size_limit: int = 2**25, hostname: str = "mx.peer.test",
                 pipelining: bool = True, smtputf8: bool = False) -> None:
        self.implicit_tls = implicit_tls
        self.smtputf8 = smtputf8  # offer SMTPUTF8 (RFC 6531)
        self.pipelining = pipelining
        self.starttls = starttls
        self.users = users
        self.oauth_tokens: dict[str, str] = {}
        self.stalled = 0  # DATA commands held by `stall_after`
        self.slowed = 0  # DATA commands held by `slow_data`
        self.protocols: list[PeerSMTP] = []
        self.size_limit = size_limit
        self.hostname = hostname
        self.faults = Faults()
        self.messages: list[Received] = []
        self.sessions: list[Session] = []
        self.lock = threading.Lock()
        self.loop = asyncio.new_event_loop()
        self._server = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None
        self.port = 0

    # --- what arrived ----------------------------------------------------------------------

    def message_ids(self) -> list[str]:
        with self.lock:
            return [m.message_id for m in self.messages]

    def deliveries(self) -> list[tuple[str, str]]:
        """(Message-ID, recipient) for every accepted recipient of every message."""
        with self.lock:
            return [(m.message_id, r) for m in self.messages for r in m.rcpt_tos]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10,
                 what: str = "the peer") -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            time.sleep(0.02)

    def drop_connections(self) -> None:
        """Close every open session from the server side (an idle timeout, a restart)."""
        def close() -> None:
            for protocol in self.protocols:
                if protocol.transport is not None:
                    protocol.transport.close()

        self.loop.call_soon_threadsafe(close)

    # --- running ---------------------------------------------------------------------------

    async def stall(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            pass

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            user, password = auth_data.login.decode(), auth_data.password.decode()
            return AuthResult(success=self.users.get(user) == password, handled=False)
        return AuthResult(success=False, handled=False)

    def _protocol(self) -> PeerSMTP:
        smtp = PeerSMTP(Handler(self), hostname=self.hostname, tls_context=self.starttls,
                        data_size_limit=self.size_limit, loop=self.loop, timeout=30,
                        enable_SMTPUTF8=self.smtputf8,
                        auth_require_tls=True, auth_required=self.users is not None,
                        authenticator=self._authenticate if self.users is not None else None)
        smtp.peer = self
        return smtp

    def start(self) -> SmtpPeer:
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self._stopping = asyncio.Event()
            self._server = self.loop.run_until_complete(self.loop.create_server(
                self._protocol, "127.0.0.1", 0, ssl=self.implicit_tls))
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            self.loop.run_forever()

        self._thread = threading.Thread(target=run, name="smtp-peer", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the SMTP peer did not start")
        return self

    def stop(self) -> None:
        if self._thread is None:
            return

        async def shutdown() -> None:
            self._stopping.set()
            self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self._thread = None
        self.loop.close()

    def __enter__(self) -> SmtpPeer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# --- certificates ----------------------------------------------------------------------------

class Certs:
    """A CA only the tests trust, and server contexts with good and bad certificates."""

    def __init__(self) -> None:
        self.ca = trustme.CA()
        self.good = self.ca.issue_cert("127.0.0.1", "localhost")

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context

    def server_context(self, cert: trustme.LeafCert | None = None) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        (cert or self.good).configure_cert(context)
        return context

    def wrong_host(self) -> ssl.SSLContext:
        return self.server_context(self.ca.issue_cert("mail.elsewhere.test"))

    def expired(self) -> ssl.SSLContext:
        now = datetime.now(UTC)
        return self.server_context(self.ca.issue_cert(
            "127.0.0.1", not_before=now - timedelta(days=30), not_after=now - timedelta(days=1)))

    def self_signed(self) -> ssl.SSLContext:
        """A certificate that is its own issuer: serve an unknown CA's own certificate."""
        own = trustme.CA()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        with own.cert_pem.tempfile() as cert, own.private_key_pem.tempfile() as key:
            context.load_cert_chain(cert, key)
        return context

    def requiring_client_cert(self) -> ssl.SSLContext:
        context = self.server_context()
        context.verify_mode = ssl.CERT_REQUIRED
        self.ca.configure_trust(context)
        return context


@pytest.fixture(scope="session")
def certs() -> Certs:
    return Certs()


@pytest.fixture
def sink():
    """A plain SMTP sink (no TLS, no AUTH) with fault injection."""
    with SmtpPeer() as peer:
        yield peer


@pytest.fixture
def sink2():
    with SmtpPeer() as peer:
        yield peer


@pytest.fixture
def starttls_peer(certs):
    with SmtpPeer(starttls=certs.server_context(), users={"acme": "s3cret"}) as peer:
        yield peer


@pytest.fixture
def tls_peer(certs):
    with SmtpPeer(implicit_tls=certs.server_context(), users={"acme": "s3cret"}) as peer:
        yield peer


def refused_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
