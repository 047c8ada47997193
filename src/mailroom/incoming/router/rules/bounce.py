"""Delivery reports: find the exact mail and recipient that failed and record it.

The VERP envelope (bounce+<signed mail and recipient ids>@domain) names both; otherwise the
returned original's X-Mailroom-ID or Message-ID names the mail and the report's recipient
addresses name the recipients. Hard bounces blacklist the address after a threshold; soft
ones (mailbox full) only when they repeat within a month. Feedback reports (ARF, spam
complaints) reach the same addresses and are read first (complaint.py).
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from mailroom.contacts.services import count_bounce
from mailroom.core.tokens import parse_mailroom_id
from mailroom.incoming.models import InboundMail
from mailroom.incoming.router.context import Context, Outcome
from mailroom.incoming.router.rules import complaint
from mailroom.lib import bounces
from mailroom.lib.autoreply import is_mailer_daemon, is_null_sender
from mailroom.outgoing.feedback.reports import bounces_so_far
from mailroom.outgoing.models import (
    OutgoingMail,
    OutgoingRecipient,
    recipients_to,
)
from mailroom.outgoing.services import record_bounce

NAME = "bounce"


def apply(ctx: Context) -> Outcome | None:
    verp = next((t.bounce for t in ctx.targets if t.kind == "bounce" and t.bounce), None)
    to_bounce_address = ctx.to_bounce_address
    complaint_outcome = complaint.apply(ctx, to_bounce_address=to_bounce_address)
    if complaint_outcome is not None:  # a feedback report (ARF): a spam complaint
        return complaint_outcome
    if not ctx.looks_like_bounce:
        return None
    report = ctx.bounce_report  # parsed before the transaction (Context.prepare)
    if report is None:
        if is_mailer_daemon(ctx.head.get("From") or "") or \
                is_null_sender(ctx.mail.envelope_from, ctx.head):
            ctx.automatic = ctx.automatic or "an automatic notice from a mail server"
            if to_bounce_address:
                return Outcome(InboundMail.Decision.DROPPED,
                               "An automatic notice from a mail server, not a delivery "
                               "report: it names no failed recipient, so no bounce is "
                               "counted.")
            ctx.note(NAME, "An automatic notice from a mail server, not a delivery report "
                           "(no failed recipient): no bounce counted.")
            return None
        if to_bounce_address:
            ctx.automatic = ctx.automatic or "sent to the bounce address"
            return Outcome(InboundMail.Decision.DROPPED,
                           "Mail to the bounce address that is not a delivery report "
                           "(an auto-reply or spam); nobody reads that address.")
        ctx.note(NAME, "Looks like a delivery report but has no failed recipient; "
                       "routed as a normal message.")
        return None
    ctx.automatic = "a delivery report"
    mail = _find_mail(ctx, report, verp) or _find_by_recipient(ctx, report)
    if mail is None:
        return Outcome(InboundMail.Decision.BOUNCE,
                       f"A delivery report ({report.reporter}) for mail Mailroom cannot find: "
                       f"{report.reason()}")
    if report.kind == "delayed":
        return Outcome(InboundMail.Decision.BOUNCE,
                       f"Delivery of “{mail.subject}” is delayed; the receiving side keeps "
                       f"trying. Nothing to do yet. {report.reason()}", record=mail.record)
    recipients = _failed_recipients(mail, report, verp)
    if not recipients:
        return Outcome(InboundMail.Decision.BOUNCE,
                       f"A delivery report for “{mail.subject}” names no recipient of it: "
                       f"{report.reason()}", record=mail.record)
    lines = [_record_bounce(mail, recipient, failed) for recipient, failed in recipients]
    return Outcome(InboundMail.Decision.BOUNCE,
                   f"“{mail.subject}” bounced: " + " ".join(lines), record=mail.record)


def _find_mail(ctx: Context, report: bounces.BounceReport, verp) -> OutgoingMail | None:
    company = ctx.mail.company_id
    if verp is not None:
        found = OutgoingMail.objects.filter(pk=verp[0], company_id=company).first()
        if found is not None:
            ctx.note(NAME, "Matched by the signed bounce address (VERP).")
            return found
    mail_id = parse_mailroom_id(report.original_mailroom_id) \
        if report.original_mailroom_id else None
    if mail_id is not None:
        found = OutgoingMail.objects.filter(pk=mail_id, company_id=company).first()
        if found is not None:
            ctx.note(NAME, "Matched by the returned X-Mailroom-ID.")
            return found
    if report.original_message_id:
        found = OutgoingMail.objects.filter(message_id=report.original_message_id.strip("<>"),
                                            company_id=company).first() or \
            OutgoingMail.objects.filter(message_id=report.original_message_id,
                                        company_id=company).first()
        if found is not None:
            ctx.note(NAME, "Matched by the returned Message-ID.")
            return found
    return None


def _find_by_recipient(ctx: Context, report: bounces.BounceReport) -> OutgoingMail | None:
    """The latest mail of the last 30 days to a failed address the report names: when a relay
    rewrote the envelope and returned no headers, the recipient is all that is left."""
    addresses = [r.address for r in report.recipients if r.address and r.kind != "delayed"]
    if not addresses:
        return None
    row = (OutgoingRecipient.objects
           .filter(recipients_to(*addresses[:20]), mail__company_id=ctx.mail.company_id,
                   mail__created_at__gte=timezone.now() - timedelta(days=30))
           .select_related("mail").order_by("-mail__created_at", "-mail_id").first())
    if row is None:
        return None
    ctx.note(NAME, f"Matched by the failed recipient {row.address}: the latest mail to it in "
                   f"30 days.")
    return row.mail


def _failed_recipients(mail: OutgoingMail, report: bounces.BounceReport, verp):
    """(row, failure) pairs; a delayed recipient is still being tried and counts nothing."""
    report = bounces.BounceReport(
        reporter=report.reporter, recipients=tuple(r for r in report.recipients
                                                   if r.kind != "delayed"),
        original_message_id=report.original_message_id,
        original_mailroom_id=report.original_mailroom_id)
    rows = list(mail.recipients.all())
    by_address = {r.address.lower(): r for r in rows}
    pairs = []
    if verp is not None and verp[1] is not None:
        row = next((r for r in rows if r.pk == verp[1]), None)
        if row is not None:
            failed = next((f for f in report.recipients if f.address == row.address.lower()),
                          report.recipients[0] if report.recipients else None)
            return [(row, failed)] if failed else []
    for failed in report.recipients:
        row = by_address.get(failed.address)
        if row is not None and (row, failed) not in pairs:
            pairs.append((row, failed))
    if not pairs and len(rows) == 1 and report.recipients:
        pairs.append((rows[0], report.recipients[0]))  # forwarded: the address changed
    return pairs


def _record_bounce(mail: OutgoingMail, recipient: OutgoingRecipient, failed) -> str:
    hard = failed.kind != "soft"  # a report that does not say counts as hard
    words = bounces.BounceReport(reporter="", recipients=(failed,), original_message_id="",
                                 original_mailroom_id="").reason()
    record_bounce(mail, recipient, hard=hard, reason=words, smtp_code=_smtp_code(failed.status))
    blacklisted = count_bounce(company_id=mail.company_id, address=recipient.address, hard=hard,
                               bounces=bounces_so_far(mail.company_id, recipient.address, hard))
    line = f"{recipient.address}: {words}"
    if blacklisted:
        line += f" {recipient.address} is now blacklisted."
    return line


def _smtp_code(status: str) -> int | None:
    return {"5": 550, "4": 450}.get((status or "")[:1])
