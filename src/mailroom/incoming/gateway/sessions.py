"""The gateway's sessions: what SMTP and LMTP clients are told, and when (see the package
docstring). RCPT asks `resolve`, DATA refuses smuggling, stamps a Received line and stores
through `accept`; over SMTP one reply covers every recipient, over LMTP each recipient gets its
own. The connection caps, the per-connection message limit and the idle timeout (Limits in
listeners.py) are enforced here, each with a 421 that closes the connection."""

from __future__ import annotations

import logging
import re
from email._header_value_parser import get_addr_spec, get_angle_addr
from typing import TYPE_CHECKING, Any

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope

from mailroom.incoming.gateway.database import store
from mailroom.incoming.gateway.received import received_header
from mailroom.incoming.services import TooLarge
from mailroom.routing import services as routing

if TYPE_CHECKING:
    from mailroom.incoming.gateway.listeners import Gateway

log = logging.getLogger("mailroom.gateway")

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


def has_bare_cr_or_lf(data: bytes) -> bool:
    """True when a CR or LF in `data` is not part of a CRLF pair (counted in C, no loop)."""
    pairs = data.count(b"\r\n")
    return data.count(b"\r") != pairs or data.count(b"\n") != pairs


# a dot-atom local part and a dot-separated host name, in angle brackets: the stdlib parser
# gives back exactly these characters (tests/incoming/test_gateway_getaddr.py holds it so)
_PLAIN_ANGLE_ADDR = re.compile(
    r"<([A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>")


class GatewayEnvelope(Envelope):
    def __init__(self) -> None:
        super().__init__()
        self.targets: list[Any] = []  # routing Targets, parallel to rcpt_tos


class _GatewayProtocol:
    """What the SMTP and LMTP sessions share: our envelope, replies, session tracking, the
    connection caps, the idle timeout and the message count."""

    gateway: Gateway
    messages = 0  # DATA transactions completed on this connection
    storing = False  # the client waits on us: the idle timer does not run
    refusal = ""  # a 421 to greet with instead of 220 (over a connection cap)
    client_ip: str | None = None  # None: a unix socket
    counted = False

    def _create_envelope(self) -> Envelope:
        return GatewayEnvelope()

    async def push(self, status):
        if isinstance(status, str) and status in _REWRITES:
            status = _REWRITES[status]
            if isinstance(self, LMTP) and status in _AFTER_DATA:
                status = "\r\n".join([status] * max(1, len(self.envelope.rcpt_tos)))
        await super().push(status)
        if isinstance(status, str) and status.startswith("421") and self.transport is not None:
            self.transport.close()  # RFC 5321 3.8: 421 closes the channel

    def connection_made(self, transport) -> None:
        first = self._original_transport is None  # not the second call after STARTTLS
        super().connection_made(transport)
        if not first:
            return
        peer = transport.get_extra_info("peername")
        self.client_ip = peer[0] if isinstance(peer, tuple) and peer else None
        self.refusal = self._over_cap()
        if self.refusal:
            log.warning("gateway: refused a connection from %s: %s",
                        self.client_ip or "a local socket", self.refusal[10:])
            return
        self.counted = True
        self.gateway.sessions.add(self)
        if self.client_ip:
            self.gateway.per_ip[self.client_ip] += 1

    def _over_cap(self) -> str:
        limits, gateway = self.gateway.limits, self.gateway
        if limits.max_connections and len(gateway.sessions) >= limits.max_connections:
            return (f"421 4.7.0 {gateway.hostname} too many connections "
                    f"({limits.max_connections}); try again later")
        if (self.client_ip and limits.max_connections_per_ip
                and gateway.per_ip[self.client_ip] >= limits.max_connections_per_ip):
            return (f"421 4.7.0 {gateway.hostname} too many connections from "
                    f"{self.client_ip} ({limits.max_connections_per_ip}); try again later")
        return ""

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """The address of a MAIL FROM or RCPT TO argument, as aiosmtpd's own `_getaddr`
        answers (the same stdlib parsers; tests/incoming/test_gateway_getaddr.py holds the two
        equal): aiosmtpd's defines a typing.Protocol class on every call, a metaclass run per
        MAIL and RCPT that was 6% of the gateway's CPU. Where the stdlib parser breaks on a
        truncated argument ("<", '"': IndexError; "0@[": AttributeError) aiosmtpd's raised
        and the client got a 500 quoting Python; here whatever the parser raises on what a
        client sent is a malformed address (None: aiosmtpd answers 553 / 501)."""
        if not arg:
            return "", ""
        plain = _PLAIN_ANGLE_ADDR.match(arg)
        if plain is not None:  # "<local@domain>" as nearly every client writes it: what the
            addr, rest = plain.group(1), arg[plain.end():]  # parser would answer, 10x sooner
            if rest[:1] in (" ", "\t"):  # the parser takes the blanks after ">" with it
                rest = rest.lstrip()
            if not rest.startswith("("):  # a comment there: the parser's to read
                if self.local_part_limit and \
                        len(addr.rpartition("@")[0]) > self.local_part_limit:
                    return None, None
                return addr, rest
        try:
            if arg.lstrip().startswith("<"):
                address, rest = get_angle_addr(arg)
            else:
                address, rest = get_addr_spec(arg)
            addr = address.addr_spec
        except Exception:  # HeaderParseError, and the parser's own breakages
            return None, None
        if self.local_part_limit and len(addr.rpartition("@")[0]) > self.local_part_limit:
            return None, None
        return addr, rest

    async def _handle_client(self) -> None:
        if self.refusal:
            await self.push(self.refusal)  # closes the connection
            return
        await super()._handle_client()

    def connection_lost(self, error) -> None:
        if self.counted:
            self.counted = False
            self.gateway.sessions.discard(self)
            if self.client_ip:
                self.gateway.per_ip[self.client_ip] -= 1
                if self.gateway.per_ip[self.client_ip] <= 0:
                    del self.gateway.per_ip[self.client_ip]
        super().connection_lost(error)

    def data_received(self, data: bytes) -> None:
        """Any bytes from the client restart the idle timer, so a long DATA over a slow link
        is not cut off while it is still arriving (aiosmtpd itself only counts commands)."""
        if self.transport is not None:
            self._reset_timeout()
        super().data_received(data)

    _active_at = 0.0  # the loop's time of the client's last command or bytes
    _idle_for = 0.0  # the idle limit the armed timer counts

    def _reset_timeout(self, duration: float | None = None) -> None:
        """The client was active: the idle time counts from now. aiosmtpd cancelled and armed
        a timer each time (each command, and here each chunk of DATA), a heap entry and a
        cancelled handle every few hundred bytes; the armed timer stays, and when it fires
        before the client was idle long enough it is armed again for what is left."""
        duration = duration or self._timeout_duration
        self._active_at = self.loop.time()
        if self._timeout_handle is None or duration != self._idle_for:
            if self._timeout_handle is not None:
                self._timeout_handle.cancel()
            self._idle_for = duration
            self._timeout_handle = self.loop.call_at(self._active_at + duration,
                                                     self._timeout_cb)

    def _timeout_cb(self) -> None:
        deadline = self._active_at + self._idle_for
        if self.loop.time() < deadline:  # the client was active since the timer was armed
            self._timeout_handle = self.loop.call_at(deadline, self._timeout_cb)
            return
        if self.storing:  # the client is waiting for our reply, not idle
            self._active_at = self.loop.time()
            self._timeout_handle = self.loop.call_at(self._active_at + self._idle_for,
                                                     self._timeout_cb)
            return
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        log.info("gateway: %s idle for %g s: disconnected",
                 self.client_ip or "a local socket", self._timeout_duration)
        transport.write(f"421 4.4.2 {self.gateway.hostname} idle for too long "
                        f"({self._timeout_duration:g} s); closing connection\r\n".encode())
        transport.close()

    def tls_details(self) -> tuple[str, str, int] | None:
        """(version, cipher, bits) of a session that did STARTTLS, else None."""
        if self._tls_protocol is None or self.transport is None:
            return None
        ssl_object = self.transport.get_extra_info("ssl_object")
        if ssl_object is None:
            return None
        cipher = ssl_object.cipher() or ("", "", 0)
        return ssl_object.version() or "TLS", cipher[0], cipher[2] or 0

    def received_protocol(self) -> str:
        """RFC 3848's name for what this session speaks: ESMTP, ESMTPS, LMTP, LMTPS, SMTP."""
        tls = "S" if self._tls_protocol is not None else ""
        if isinstance(self, LMTP):
            return "LMTP" + tls
        return ("ESMTP" if self.session.extended_smtp else "SMTP") + tls


class GatewaySMTP(_GatewayProtocol, SMTP):
    source = "smtp"


class GatewayLMTP(_GatewayProtocol, LMTP):
    source = "lmtp"


class Handler:
    """aiosmtpd's hooks: MAIL counts messages, RCPT asks `resolve`, DATA stores through
    `accept`."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def handle_MAIL(self, server, session, envelope, address: str, mail_options):
        limit = self.gateway.limits.messages_per_connection
        if limit and server.messages >= limit:
            return (f"421 4.7.0 {self.gateway.hostname} {limit} messages on one connection "
                    "is the limit here; please reconnect to send more")
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(self, server, session, envelope, address: str, rcpt_options):
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return REPLY_TOO_MANY_RCPT
        try:
            # the cached aliases answer on the event loop; a database thread loads them when
            # they are older than a few seconds (a thread handoff per RCPT was ~5% of the
            # gateway's CPU)
            target = routing.resolve(address, load=False)
            if target is routing.STALE:
                target = await self.gateway.db.run(routing.resolve, address)
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
        server.messages += 1
        server.storing = True
        try:
            return await self._data(server, session, envelope)
        finally:
            server.storing = False

    async def _data(self, server, session, envelope):
        lmtp = isinstance(server, LMTP)
        raw: bytes = envelope.original_content or b""
        peer = session.peer if isinstance(session.peer, tuple) else None
        if has_bare_cr_or_lf(raw):
            log.warning("gateway: refused a message with bare CR/LF from %s",
                        peer[0] if peer else "a local socket")
            return self._replies(REPLY_SMUGGLING, envelope, lmtp)
        raw = received_header(
            helo=session.host_name or "", ip=peer[0] if peer else None,
            hostname=self.gateway.hostname, protocol=server.received_protocol(),
            tls=server.tls_details(),
            recipient=envelope.rcpt_tos[0] if len(envelope.rcpt_tos) == 1 else None) + raw
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
        try:
            ids = await self.gateway.db.run(store, raw, groups, **meta)
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
