"""Automatic mail and loops: note RFC 3834 automatic mail (it is never answered) and drop
senders over the flood limit (default 20 messages per 120 minutes) unless allowed."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from mailroom.incoming.models import InboundMail
from mailroom.incoming.router.context import Context, Outcome
from mailroom.lib import autoreply
from mailroom.routing import services as routing

NAME = "loop"
MAX_RECEIVED_HEADERS = 50  # RFC 5321 6.3: a message relayed this often is looping


def flood_limit() -> tuple[int, int]:
    return (int(getattr(settings, "MAILROOM_FLOOD_LIMIT", 20)),
            int(getattr(settings, "MAILROOM_FLOOD_MINUTES", 120)))


def apply(ctx: Context) -> Outcome | None:
    head = ctx.head
    if head.from_empty_group:
        return _no_sender(ctx)
    reason = autoreply.automatic_reason(head, ctx.mail.envelope_from)
    if reason:
        ctx.automatic = ctx.automatic or reason
        ctx.note(NAME, f"Automatic mail ({reason}): it will never be answered.")
    hops = len(head.get_all("Received"))
    if hops > MAX_RECEIVED_HEADERS:
        return Outcome(InboundMail.Decision.DROPPED,
                       f"The message passed {hops} mail servers: it is looping.")
    sender = ctx.sender
    if not sender:
        return None
    target = ctx.targets[0] if ctx.targets else None
    entries = routing.allowed_senders(ctx.mail.company_id, getattr(target, "alias", None),
                                      getattr(target, "domain", None))
    ctx.allowed_sender = routing.is_allowed(sender, entries)
    if ctx.allowed_sender is not None:
        ctx.note(NAME, f"{sender} is an allowed sender ({ctx.allowed_sender.pattern}): "
                       f"no flood limit.")
        return None
    limit, minutes = flood_limit()
    facts = ctx.read_ahead()
    if facts is not None and not facts.may_flood(ctx, limit):
        return None  # even counted generously, the sender is under the limit
    since = (ctx.mail.received_at or timezone.now()) - timedelta(minutes=minutes)
    recent = (InboundMail.objects
              .filter(company_id=ctx.mail.company_id, from_address=sender,
                      received_at__gte=since, state=InboundMail.State.DONE)
              .exclude(pk=ctx.mail.pk).count())
    if recent >= limit:
        return Outcome(InboundMail.Decision.DROPPED,
                       f"{sender} sent {recent + 1} messages in {minutes} minutes; the limit "
                       f"is {limit}. Add the sender to the allowed senders if this is "
                       f"expected.")
    return None


class _WithoutEnvelopeSender:
    """The headers minus those naming the envelope sender (Return-Path, Sender)."""

    def __init__(self, head) -> None:
        self.head = head

    def get(self, name: str, default=None):
        if name.lower() in ("return-path", "sender"):
            return default
        return self.head.get(name, default)


def _no_sender(ctx: Context) -> Outcome | None:
    """From is an empty group: the message names no sender. It goes on as mail from an
    unknown sender — no contact is made and nobody is answered — and is automatic only if its
    own headers say so; the envelope sender (often a no-reply or bounce address of whatever
    relayed it) is not taken for its author."""
    group = ctx.head.from_empty_group
    ctx.note(NAME, f"No sender address: the From line is an empty group (“{group}”). "
                   f"It is handled as mail from an unknown sender; nobody is answered.")
    null = "<>" if autoreply.is_null_sender(ctx.mail.envelope_from, ctx.head) else ""
    reason = autoreply.automatic_reason(_WithoutEnvelopeSender(ctx.head), null)
    if reason:
        ctx.automatic = ctx.automatic or reason
        ctx.note(NAME, f"Automatic mail ({reason}): it will never be answered.")
    hops = len(ctx.head.get_all("Received"))
    if hops > MAX_RECEIVED_HEADERS:
        return Outcome(InboundMail.Decision.DROPPED,
                       f"The message passed {hops} mail servers: it is looping.")
    return None
