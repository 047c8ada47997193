"""The outbox's KPIs for digest emails (core.kpis): what went out, what did not."""

from __future__ import annotations

from django.db.models import Max
from django.db.models.functions import Coalesce

from mailroom.core.kpis import Kpi, Unit, changelist_link, register
from mailroom.outgoing.models import OutgoingMail, OutgoingRecipient

State = OutgoingMail.State
PERMISSION = "outgoing.view_outgoingmail"


def mails_sent(company, start, end) -> int:
    return OutgoingMail.objects.filter(company=company, state=State.SENT, sent_at__gte=start,
                                       sent_at__lt=end).count()


def mails_failed(company, start, end) -> int:
    # a failure is dated by the mail's last send attempt (a mail refused before any attempt,
    # e.g. every recipient blacklisted, by its creation)
    return (OutgoingMail.objects.filter(company=company, state=State.EXCEPTION)
            .annotate(failed_at=Coalesce(Max("attempts__started_at"), "created_at"))
            .filter(failed_at__gte=start, failed_at__lt=end).count())


def recipients_bounced(company, start, end) -> int:
    return (OutgoingRecipient.objects.filter(mail__company=company,
                                             status=OutgoingRecipient.Status.BOUNCED)
            .annotate(sent=Coalesce("sent_at", "mail__sent_at", "mail__created_at"))
            .filter(sent__gte=start, sent__lt=end).count())


def register_kpis() -> None:
    register(Kpi(key="outgoing.mails_sent", group="Email", label="Emails sent",
                 unit=Unit.COUNT, compute=mails_sent, permission=PERMISSION, position=10,
                 list_url=changelist_link("outgoing.outgoingmail", "sent_at",
                                          state=State.SENT),
                 description="Emails the mail server accepted in the period (one per email, "
                             "however many recipients)."))
    register(Kpi(key="outgoing.mails_failed", group="Email", label="Emails failed",
                 unit=Unit.COUNT, compute=mails_failed, permission=PERMISSION, position=20,
                 higher_is_better=False,
                 list_url=changelist_link("outgoing.outgoingmail", "created_at",
                                          state=State.EXCEPTION),
                 description="Emails whose last send attempt in the period failed for good "
                             "and that are still failed (a retried email that went out no "
                             "longer counts)."))
    register(Kpi(key="outgoing.recipients_bounced", group="Email", label="Bounces",
                 unit=Unit.COUNT, compute=recipients_bounced, permission=PERMISSION,
                 position=30, higher_is_better=False,
                 list_url=changelist_link("outgoing.outgoingmail", "sent_at"),
                 description="Recipients of the emails sent in the period whose server "
                             "later reported a bounce (a late bounce report still counts "
                             "for the period the email was sent in)."))
