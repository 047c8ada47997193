"""Mail to the catch-all or to no alias: the incoming server's fallback record type, else
the message is refused (with one reply telling the sender)."""

from __future__ import annotations

from mailroom.incoming.models import InboundMail
from mailroom.incoming.router.context import Context, Destination, Outcome

NAME = "fallback"


def apply(ctx: Context) -> Outcome | None:
    if ctx.destination is not None:
        return None
    server = ctx.mail.server
    if server is not None and server.fallback_record_type:
        if ctx.automatic and ctx.allowed_sender is None:
            return Outcome(InboundMail.Decision.DROPPED,
                           f"Automatic mail ({ctx.automatic}) does not create records.")
        ctx.destination = Destination(f"the fallback of server “{server.name}”",
                                      record_type=server.fallback_record_type)
        return None
    if any(t.kind == "catchall" for t in ctx.targets):
        return Outcome(InboundMail.Decision.REFUSED,
                       "Sent to the catch-all address, but it answers no message Mailroom "
                       "knows and no fallback record type is set.", refuse_with_reply=True)
    return Outcome(InboundMail.Decision.REFUSED,
                   "Sent to no alias of this company, and not a reply to a known message.",
                   refuse_with_reply=bool(ctx.targets))
