"""The one reply a refused sender gets: automatic (RFC 3834), threaded to their message,
sent at most once per message and never to automatic mail."""

from __future__ import annotations

from mailroom.incoming.notify import system_sender
from mailroom.incoming.router.context import Context
from mailroom.outgoing.models import OutgoingMail
from mailroom.outgoing.services import enqueue

STANDARD_TEXT = ("Hello,\n\nYour message “{subject}” to {address} was not delivered.\n\n"
                 "Reason: {reason}\n\nThis is an automatic reply; please do not answer it.")


def send_refusal(ctx: Context, reason: str) -> OutgoingMail | None:
    sender = ctx.sender
    if not sender or ctx.automatic or ctx.mail.pk is None and not ctx.dry:
        return None
    target = ctx.alias_target or (ctx.targets[0] if ctx.targets else None)
    alias = target.alias if target is not None else None
    address = target.address if target is not None else "this address"
    subject = ctx.head.subject
    template = (alias.bounce_message if alias is not None and alias.bounce_message
                else STANDARD_TEXT)
    text = template.replace("{subject}", subject or "(no subject)").replace(
        "{address}", address).replace("{reason}", reason)
    from_address = (f"{ctx.mail.company.name} <{target.domain.default_from_email}>"
                    if target is not None else system_sender(ctx.mail.company))
    if not from_address:
        ctx.note("post", "No sender address for the refusal reply; none was sent.")
        return None
    headers = {"Auto-Submitted": "auto-replied", "X-Auto-Response-Suppress": "All"}
    if ctx.head.message_id:
        headers["In-Reply-To"] = ctx.head.message_id
        headers["References"] = ctx.head.message_id
    mail = enqueue(company=ctx.mail.company, email_from=from_address, to=[sender],
                   subject=f"Not delivered: {subject}"[:900] if subject else "Not delivered",
                   text=text, headers=headers, is_automatic=True,
                   idempotency_key=f"inbound-refusal-{ctx.mail.pk or 'dry'}")
    ctx.note("post", f"Told {sender} once why the message was refused.")
    return mail
