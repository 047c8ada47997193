"""The gateway's sessions: what SMTP and LMTP clients are told, and when (see the package
docstring). RCPT asks `resolve`, DATA refuses smuggling and stores through `accept`; over SMTP
one reply covers every recipient, over LMTP each recipient gets its own."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope

from mailroom.incoming.gateway.database import store
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
