"""Mail to a command address (`unsubscribe+<token>@…`): run the registered handler
(`routing.commands`, filled by the app that owns the command) and log what it did.

Such mail never reaches a record and is never answered (it is a machine request, like a
delivery report): a valid token is done (idempotently: the handler says when nothing was
left to do), a tampered or unknown one changes nothing and the message is dropped with a
reason. A message also sent to an ordinary address of ours runs the command and goes on to
be routed for that address.
"""

from __future__ import annotations

from mailroom.incoming.models import InboundMail
from mailroom.incoming.router.context import Context, Outcome
from mailroom.routing import commands

NAME = "command"


def apply(ctx: Context) -> Outcome | None:
    targets = [t for t in ctx.targets if t.kind == "command" and t.command]
    if not targets:
        return None
    results = []
    for target in targets:
        prefix, token = target.command
        command = commands.lookup(prefix)
        if command is None:  # unregistered since RCPT (a restart without the app)
            results.append((False, f"{target.address}: no command “{prefix}” is installed; "
                                   f"nothing was changed."))
            continue
        result = command.handler(commands.CommandMail(
            company_id=ctx.mail.company_id, prefix=prefix, token=token,
            address=target.address, sender=ctx.sender, remote_ip=ctx.mail.remote_ip))
        results.append((result.done, result.reason))
    reason = " ".join(text for _, text in results)
    if len(targets) < len(ctx.targets):
        ctx.note(NAME, reason + " The message is routed on for its other addresses.")
        return None
    ctx.automatic = ctx.automatic or "a request to a command address"  # never answered
    decision = (InboundMail.Decision.BOUNCE if any(done for done, _ in results)
                else InboundMail.Decision.DROPPED)
    return Outcome(decision, reason)
