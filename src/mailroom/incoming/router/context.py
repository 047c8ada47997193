"""What the router's rules share: the Context of one message, where it goes (Destination)
and the decision (Outcome). Rules import only this module; the runner assembles them."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property

from django.conf import settings
from django.db import models

from mailroom.incoming.models import InboundMail
from mailroom.lib import bounces, inbound
from mailroom.routing import services as routing


@dataclass
class Destination:
    """Where the message goes: an existing record, or a new record of a type."""

    how: str  # plain words for the log: "reply to <id>", "alias sales@acme.test"…
    record: models.Model | None = None
    record_type: str = ""
    defaults: dict = field(default_factory=dict)
    alias: object | None = None  # routing.Alias
    parent_message: object | None = None  # chatter.Message replied to


@dataclass
class Outcome:
    decision: str  # InboundMail.Decision
    reason: str
    record: models.Model | None = None
    message: object | None = None  # chatter.Message
    refuse_with_reply: bool = False  # send the sender one bounce reply


class Context:
    """What the rules share about one message; parsing and lookups happen on first use."""

    def __init__(self, mail: InboundMail, raw: bytes, *, dry: bool = False) -> None:
        self.mail = mail
        self.raw = raw
        self.dry = dry
        self.trace: list[dict] = []
        self.automatic: str | None = None
        self.destination: Destination | None = None
        self.allowed_sender = None  # the AllowedSender entry that matched, if any
        self.alias_target = None  # the first recipient that is an alias
        self.new_contact = None  # the contact the post rule made for an unknown sender
        self.facts = None  # facts.BatchFacts: what the batch read ahead, when routed in one
        self.started = time.monotonic()

    def read_ahead(self):
        """The batch's facts when they cover this message, else None (ask the database)."""
        facts = self.facts
        return facts if facts is not None and facts.covers(self) else None

    def note(self, rule: str, text: str) -> None:
        self.trace.append({"rule": rule, "note": text[:500]})

    def prepare(self) -> None:
        """Do before the routing transaction what needs no database write: parse the head and
        the body, resolve the recipients (cached aliases) and authenticate the sender (DNS).
        On SQLite the routing transaction holds the one write lock, which the gateway needs to
        store what it accepts: the less of the routing happens inside it, the less intake
        waits."""
        try:  # each is a cached_property: reading it once computes and keeps it
            _ = self.head, self.targets
            if self.looks_like_bounce:  # parsed here, not in the transaction
                _ = self.bounce_report
            if self.mail.envelope_from:  # a delivery report (<>) is the bounce rule's
                _ = self.body
                if self.sender:
                    _ = self.auth
        except inbound.InboundError:  # the rules meet it again and quarantine the message
            return

    @cached_property
    def head(self) -> inbound.Head:
        return inbound.parse_head(self.raw, limits())

    @cached_property
    def body(self) -> inbound.Body:
        return inbound.parse_body(self.raw, limits())

    @property
    def sender(self) -> str:
        """The From address (lowercase), or the envelope sender when From is missing; none
        when From is an empty group ('undisclosed-recipients:;'): it names nobody."""
        if self.head.from_empty_group:
            return ""
        return (self.head.from_address or self.mail.envelope_from or "").lower()

    @cached_property
    def targets(self) -> list:
        """Our addresses this message was sent to: the envelope for gateway mail, else the
        To, Cc and Delivered-To headers (a fetched mailbox has no envelope)."""
        addresses = list(self.mail.envelope_to or [])
        if not addresses:
            addresses = [a for _, a in self.head.to + self.head.cc]
            addresses += self.head.get_all("Delivered-To") + self.head.get_all("X-Original-To")
        found, seen = [], set()
        for address in addresses:
            target = routing.resolve(address)
            if target is None or target.company_id != self.mail.company_id:
                continue
            if target.address not in seen:
                seen.add(target.address)
                found.append(target)
        return found

    @cached_property
    def to_bounce_address(self) -> bool:
        """Sent to one of our bounce addresses (the VERP envelope, or the plain one)."""
        return any(t.kind == "bounce" for t in self.targets)

    @cached_property
    def looks_like_bounce(self) -> bool:
        """Sent to a bounce address, or looks like a delivery report (lib.bounces)."""
        return self.to_bounce_address or bounces.looks_like_bounce(self.head,
                                                                   self.mail.envelope_from)

    @cached_property
    def bounce_report(self) -> bounces.BounceReport | None:
        """The delivery report, when this message is one that names a failed recipient."""
        return bounces.parse_bounce(self.raw, expected=self.to_bounce_address)

    @cached_property
    def auth(self):
        """SPF/DKIM/DMARC computed by Mailroom (lib.mailauth), only when a rule asks."""
        from mailroom.lib import mailauth  # local: dnspython + DKIM cost ~0.3 s to import

        server = self.mail.server
        trusted = [server.trusted_authserv_id] if server and server.trusted_authserv_id else []
        trusted += list(getattr(settings, "MAILROOM_TRUSTED_AUTHSERV_IDS", []))
        result = mailauth.authenticate(
            self.raw, from_domain=self.sender.rpartition("@")[2], ip=self.mail.remote_ip,
            mail_from=self.mail.envelope_from, helo=self.mail.helo, dns=dns_config(),
            trusted_results=trusted)
        self.mail.auth_summary = result.summary()[:300]
        return result

    @property
    def sender_verified(self) -> bool:
        return bool(self.sender) and self.auth.verified


def limits() -> inbound.Limits:
    return inbound.Limits(
        max_bytes=int(getattr(settings, "MAILROOM_INBOUND_MAX_BYTES", 50 * 1024 * 1024)),
        max_parts=int(getattr(settings, "MAILROOM_INBOUND_MAX_PARTS", 1000)),
        max_seconds=float(getattr(settings, "MAILROOM_INBOUND_MAX_SECONDS", 20.0)),
    )


def dns_config():
    from mailroom.lib.dns_lookup import DnsConfig  # local: dnspython is slow to import

    return DnsConfig.from_setting(getattr(settings, "MAILROOM_DNS_SERVERS", "") or "",
                                  float(getattr(settings, "MAILROOM_DNS_TIMEOUT", 3.0)))
