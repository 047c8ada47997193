"""Feedback reports (ARF): a mailbox provider says a recipient marked our mail as spam.

Called by the bounce rule first: a report is found by the returned original's X-Mailroom-ID,
else its Message-ID, and its recipient by the report's Original-Rcpt-To (a redacted address
still finds the one recipient of a campaign mail). outgoing.services.record_complaint notes
it and runs the complaint hooks (campaigns suppress the address). The inbound mail is logged
as a report either way; one about mail Mailroom cannot find says so and changes nothing.
A feedback report sent to an ordinary address and naming no mail of ours is someone's
business (an abuse desk forwarding it): it is routed as a normal message.
"""

from __future__ import annotations

from mailroom.core.tokens import parse_mailroom_id
from mailroom.incoming.models import InboundMail
from mailroom.incoming.router.context import Context, Outcome
from mailroom.lib import arf
from mailroom.outgoing.models import OutgoingMail, OutgoingRecipient
from mailroom.outgoing.services import record_complaint

NAME = "bounce"


def apply(ctx: Context, *, to_bounce_address: bool) -> Outcome | None:
    if not arf.is_feedback_report(ctx.head):
        return None
    report = arf.parse_feedback(ctx.raw)
    if report is None:
        return None
    mail = _find_mail(ctx, report)
    if mail is None and not to_bounce_address:
        ctx.note(NAME, "A feedback report about mail Mailroom did not send; routed as a "
                       "normal message.")
        return None
    ctx.automatic = "a feedback report"
    if mail is None:
        return Outcome(InboundMail.Decision.BOUNCE,
                       f"A spam complaint ({report.describe()}) about mail Mailroom cannot "
                       f"find (Message-ID {report.original_message_id or 'missing'}); "
                       f"nothing was changed.")
    if not report.is_complaint:
        return Outcome(InboundMail.Decision.BOUNCE,
                       f"A {report.feedback_type} report on “{mail.subject}” from "
                       f"{report.reporter}: not a complaint, nothing to do.", record=mail.record)
    recipient = _recipient(mail, report)
    if recipient is None:
        return Outcome(InboundMail.Decision.BOUNCE,
                       f"A spam complaint on “{mail.subject}” ({report.describe()}) names no "
                       f"recipient of it; nothing was changed.", record=mail.record)
    record_complaint(mail, recipient, report.feedback_type, actor=None)
    return Outcome(InboundMail.Decision.BOUNCE,
                   f"{recipient.address} marked “{mail.subject}” as spam "
                   f"({report.describe()}); the address is kept out of bulk mail from now on.",
                   record=mail.record)


def _find_mail(ctx: Context, report: arf.FeedbackReport) -> OutgoingMail | None:
    mails = OutgoingMail.objects.filter(company_id=ctx.mail.company_id)
    mail_id = parse_mailroom_id(report.original_mailroom_id) \
        if report.original_mailroom_id else None
    if mail_id is not None:
        found = mails.filter(pk=mail_id).first()
        if found is not None:
            ctx.note(NAME, "Feedback report matched by the returned X-Mailroom-ID.")
            return found
    if report.original_message_id:
        bare = report.original_message_id.strip("<>")
        found = mails.filter(message_id__in=[bare, report.original_message_id]).first()
        if found is not None:
            ctx.note(NAME, "Feedback report matched by the returned Message-ID.")
            return found
    return None


def _recipient(mail: OutgoingMail, report: arf.FeedbackReport) -> OutgoingRecipient | None:
    rows = list(mail.recipients.all()[:500])
    by_address = {row.address.lower(): row for row in rows}
    for address in report.original_rcpt_to:
        if address in by_address:
            return by_address[address]
    if len(rows) == 1:
        return rows[0]  # redacted (Yahoo, AOL) or forwarded: a campaign mail has one recipient
    return None
