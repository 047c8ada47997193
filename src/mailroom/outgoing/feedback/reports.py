"""What a provider's event says, and recording it: the one writer of FeedbackEvent.

A `Report` is one event about one recipient, already verified and parsed. `apply` records it
once: the (server, key) row is inserted in the same transaction as the complaint or bounce,
so a replayed event finds its row and changes nothing, and two deliveries of one event at the
same moment meet the unique constraint. The mail is looked up in the server's company only
(X-Mailroom-ID, else the Message-ID); an event about mail we cannot find is kept as
`unmatched` (counted on the server's page) and answered 200 — providers retry anything else.
Bounces count towards the contact's blacklisting exactly as a mailed-back DSN does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from mailroom.contacts.services import count_bounce
from mailroom.core.tokens import parse_mailroom_id
from mailroom.outgoing.models import (
    FailureType,
    FeedbackEvent,
    MailServer,
    OutgoingMail,
    OutgoingRecipient,
    recipients_to,
)
from mailroom.outgoing.services import record_bounce, record_complaint

COMPLAINT, BOUNCE, IGNORE = "complaint", "bounce", "ignore"


@dataclass
class Report:
    key: str  # the provider's event id, unique per event (the recipient is added by apply)
    kind: str  # COMPLAINT, BOUNCE or IGNORE
    address: str = ""
    message_ids: list[str] = field(default_factory=list)
    mailroom_ids: list[str] = field(default_factory=list)
    hard: bool = True
    reason: str = ""
    smtp_code: int | None = None
    feedback_type: str = "abuse"
    note: str = ""  # why an IGNORE is ignored


class Refused(Exception):
    """The request is refused: `status` (4xx) with a plain-text reason."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def smtp_code(status: str | int | None) -> int | None:
    """550 from "550", "5.1.1" or 550; None when it says nothing."""
    text = str(status or "").strip()
    if text[:3].isdigit() and 200 <= int(text[:3]) < 600:
        return int(text[:3])
    return {"5": 550, "4": 450}.get(text[:1])


def bare_message_id(value: str) -> str:
    return (value or "").strip().strip("<>").strip()


def find_mail(server: MailServer, report: Report) -> OutgoingMail | None:
    mails = OutgoingMail.objects.filter(company_id=server.company_id)
    for value in report.mailroom_ids:
        mail_pk = parse_mailroom_id(value)
        if mail_pk is not None:
            found = mails.filter(pk=mail_pk).first()
            if found is not None:
                return found
    ids = {bare_message_id(v) for v in report.message_ids if bare_message_id(v)}
    if ids:
        candidates = ids | {f"<{v}>" for v in ids}
        return mails.filter(message_id__in=sorted(candidates)[:20]).first()
    return None


def _recipient(mail: OutgoingMail, address: str) -> OutgoingRecipient | None:
    address = (address or "").strip().lower()
    if not address:
        return None
    return next((r for r in mail.recipients.all() if r.address.lower() == address), None)


def bounces_so_far(company_id: int, address: str, hard: bool) -> int:
    """Hard bounces to `address` ever, or soft ones in the last 30 days (this one included):
    what blacklists an address, for a provider's report here and a mailed-back one in the
    router's bounce rule."""
    sent = OutgoingRecipient.objects.filter(recipients_to(address), mail__company_id=company_id)
    if hard:
        return sent.filter(failure_type=FailureType.HARD_BOUNCE).count()
    return sent.filter(failure_type=FailureType.SOFT_BOUNCE,
                       mail__created_at__gte=timezone.now() - timedelta(days=30)).count()


def apply(server: MailServer, reports: list[Report]) -> list[str]:
    """Record each report once; one plain line per report says what happened."""
    return [_apply_one(server, report) for report in reports]


def _apply_one(server: MailServer, report: Report) -> str:
    address = (report.address or "").strip().lower()[:320]
    key = f"{server.feedback_kind}:{report.key}:{address}"[:255]
    try:
        with transaction.atomic():
            row, created = FeedbackEvent.objects.get_or_create(
                server=server, key=key,
                defaults={"outcome": FeedbackEvent.Outcome.IGNORED, "address": address})
            if not created:
                return f"{address or 'event'}: already handled, nothing changed."
            line = _record(server, report, row, address)
            row.save(update_fields=["outcome", "mail", "note"])
            return line
    except IntegrityError:  # the same event delivered twice at once: the other one won
        return f"{address or 'event'}: already handled, nothing changed."


def _record(server: MailServer, report: Report, row: FeedbackEvent, address: str) -> str:
    Outcome = FeedbackEvent.Outcome
    if report.kind == IGNORE:
        row.note = report.note[:2000]
        return f"{address or 'event'}: ignored — {report.note}"
    mail = find_mail(server, report)
    if mail is None:
        row.outcome = Outcome.UNMATCHED
        row.note = (f"A {report.kind} for mail this company did not send through Mailroom "
                    f"(Message-ID {', '.join(report.message_ids) or 'missing'}).")[:2000]
        return f"{address}: {row.note} Nothing was changed."
    row.mail = mail
    recipient = _recipient(mail, address)
    if recipient is None:
        row.outcome = Outcome.UNMATCHED
        row.note = f"{address or 'No address'} is not a recipient of mail {mail.pk}."
        return f"{address}: {row.note} Nothing was changed."
    if report.kind == COMPLAINT:
        record_complaint(mail, recipient, report.feedback_type or "abuse", actor=None)
        row.outcome = Outcome.COMPLAINT
        row.note = f"Marked as spam ({report.feedback_type or 'abuse'})."
        return f"{address}: complaint recorded on mail {mail.pk}."
    reason = report.reason or ("Permanent failure" if report.hard else "Temporary failure")
    record_bounce(mail, recipient, hard=report.hard, reason=reason, smtp_code=report.smtp_code,
                  actor=None)
    blacklisted = count_bounce(company_id=mail.company_id, address=recipient.address,
                               hard=report.hard,
                               bounces=bounces_so_far(mail.company_id, recipient.address,
                                                       report.hard))
    row.outcome = Outcome.BOUNCE
    row.note = (f"{'Hard' if report.hard else 'Soft'} bounce: {reason}"
                + (" The address is now blacklisted." if blacklisted else ""))[:2000]
    return f"{address}: {'hard' if report.hard else 'soft'} bounce recorded on mail {mail.pk}."
