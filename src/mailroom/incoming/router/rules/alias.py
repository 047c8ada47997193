"""Mail to an alias: a new record of its type with its default values, or — for an alias
that forces a thread — a post on its one record. Automatic mail never creates records
(an out-of-office would open a ticket) unless its sender is allowed."""

from __future__ import annotations

from mailroom.incoming.models import InboundMail
from mailroom.incoming.router.context import Context, Destination, Outcome

NAME = "alias"


def apply(ctx: Context) -> Outcome | None:
    target = next((t for t in ctx.targets if t.alias is not None), None)
    if target is not None:
        ctx.alias_target = target
    if ctx.destination is not None:
        return None
    if target is None:
        ctx.note(NAME, "Not sent to an alias.")
        return None
    alias = target.alias
    if alias.forces_thread:
        record = alias.thread
        if record is not None:
            ctx.destination = Destination(f"alias {alias.email} appends to one record",
                                          record=record, alias=alias)
            return None
        ctx.note(NAME, f"The record of alias {alias.email} no longer exists.")
    if ctx.automatic and ctx.allowed_sender is None:
        return Outcome(InboundMail.Decision.DROPPED,
                       f"Automatic mail ({ctx.automatic}) does not create records through "
                       f"{alias.email}. Add the sender to the allowed senders to let it.")
    ctx.destination = Destination(f"alias {alias.email}", record_type=alias.record_type,
                                  defaults=dict(alias.defaults or {}), alias=alias)
    return None
