"""A message seen before (same Message-ID in this company), or one Mailroom sent itself."""

from __future__ import annotations

from mailroom.chatter.models import Message
from mailroom.core.tokens import MAILROOM_ID_HEADER, parse_mailroom_id
from mailroom.incoming.models import InboundMail
from mailroom.incoming.router.context import Context, Outcome

NAME = "duplicate"


def apply(ctx: Context) -> Outcome | None:
    head = ctx.head
    message_id = head.message_id
    facts = ctx.read_ahead()
    if message_id and (facts is None or facts.may_be_duplicate(ctx)):
        earlier = (InboundMail.objects
                   .filter(company_id=ctx.mail.company_id, message_id=message_id,
                           state=InboundMail.State.DONE)
                   .exclude(pk=ctx.mail.pk).exclude(decision=InboundMail.Decision.REFUSED)
                   .order_by("received_at").values_list("pk", flat=True).first())
        if earlier is not None:
            return Outcome(InboundMail.Decision.DUPLICATE,
                           f"Already received as message #{earlier} "
                           f"(same Message-ID {message_id}).")
        posted = Message.objects.filter(company_id=ctx.mail.company_id,
                                        message_id=message_id).only(
            "content_type_id", "object_id").first()
        if posted is not None:
            return Outcome(InboundMail.Decision.DUPLICATE,
                           f"This message ({message_id}) is already on a record's chatter.",
                           record=posted.record)
    own = head.get(MAILROOM_ID_HEADER)
    if own and parse_mailroom_id(own) is not None:
        return Outcome(InboundMail.Decision.DUPLICATE,
                       "Mailroom sent this message itself (it carries our signed "
                       "X-Mailroom-ID); posting it again would start a loop.")
    ctx.note(NAME, "First time seen." if message_id else "No Message-ID; cannot be checked.")
    return None
